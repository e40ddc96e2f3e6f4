"""Keyword detection on long streams: false rejections at a fixed number of false alarms per hour.

What shipping a keyword spotter is judged by (TensorFlow's
`test_streaming_accuracy.py` / RecognizeCommands, MLPerf Tiny's streaming
wake-word benchmark): run the model over hours of audio as an app would, turn
its posteriors into announcements, and count

* false rejections: labelled keywords with no announcement of their label
  within `tolerance` (1.5 s) of their span; FRR = missed / keywords;
* false alarms: every other announcement (in noise, on an `_unknown_` word,
  the wrong keyword, or a second announcement of one keyword), as FA/h over
  the whole audio.

Sweeping the threshold gives a DET curve (FRR vs FA/h); the operating points
are the best swept thresholds that stay at or under 0.5 and 1 FA/h (measured
points, not interpolated: a threshold an app can ship).

Three modules, kept apart so the metrics are testable without TensorFlow:

* `kws_kd.stream_metrics`, pure numpy (`ScoredFile`, `detections`, `match`,
  `score_threshold`, `sweep`, `operating_point`): smoothed posteriors + hop
  times in, counts out, decoded and announced by the app mirror's own rules;
* `kws_kd.stream_scorers`: a model (whole-clip or streaming .tflite, Keras run)
  over a stream file -> per-hop smoothed posteriors, as the app computes them;
* this module: every file of a stream through each scorer, the sweep, the
  operating points, and the report files (JSON, CSVs, DET PNG).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from kws_kd import app_logic as al
from kws_kd.data.stream_folder import Stream, read_stream
from kws_kd.errors import KwsKdError
from kws_kd.stream_metrics import (
    DEFAULT_SUPPRESSION_MS,
    DEFAULT_TOLERANCE_MS,
    FA_KINDS,
    OPERATING_RULE,
    REFERENCE_THRESHOLD,
    TARGET_FA_PER_HOUR,
    ScoredFile,
    default_thresholds,
    operating_point,
    point_at,
    sweep,
)
from kws_kd.stream_scorers import Scorer


# ---------------------------------------------------------------- the whole evaluation


def check_scorer(stream: Stream, scorer: Scorer) -> None:
    """The model must know every keyword the stream labels and take the stream's sample rate."""
    if scorer.sidecar.sample_rate != stream.sample_rate:
        raise KwsKdError(f"{stream.files[0].path}: {stream.sample_rate} Hz, but {scorer.path} takes "
                         f"{scorer.sidecar.sample_rate} Hz")
    known = set(scorer.labels)
    for e in stream.events:
        if not al.is_filler(e.label) and e.label not in known:
            raise KwsKdError(f"{stream.root / 'labels.csv'}: word {e.label!r} is not a label of {scorer.path} "
                             f"(its labels: {', '.join(scorer.labels)})")


def score_stream(stream: Stream, scorer: Scorer, progress: bool = True) -> tuple[list[ScoredFile], float]:
    """Every file of the stream through one scorer; returns the scored files and the processing seconds."""
    import soundfile as sf
    from tqdm import tqdm

    scored, busy = [], 0.0
    total = sum(f.samples for f in stream.files)
    with tqdm(total=round(total / stream.sample_rate), desc=scorer.name, unit="s audio", leave=False,
              disable=None if progress else True) as bar:
        carry = [0.0]

        def tick(n: int) -> None:
            carry[0] += n / stream.sample_rate
            whole = int(carry[0])
            if whole:
                bar.update(whole)
                carry[0] -= whole

        for f in stream.files:
            pcm, _ = sf.read(str(f.path), dtype="int16", always_2d=False)
            t0 = time.perf_counter()
            ends, smoothed = scorer.score(pcm, tick)
            busy += time.perf_counter() - t0
            scored.append(ScoredFile(f.path.name, f.seconds, ends / stream.sample_rate, smoothed))
    return scored, busy


def evaluate_stream(
    stream_dir: str | Path,
    scorers: Sequence[Scorer],
    *,
    out_dir: str | Path | None = None,
    suppression_ms: float = DEFAULT_SUPPRESSION_MS,
    tolerance_ms: float = DEFAULT_TOLERANCE_MS,
    thresholds: Sequence[float] | None = None,
    progress: bool = True,
    stream: Stream | None = None,
) -> dict:
    """`kws-kd eval --stream`: sweep, operating points and per-keyword breakdown of each model; files in out_dir.

    Everything is validated before any model runs and outputs are written only
    at the end (each atomically), so a bad input leaves nothing behind.
    """
    if not scorers:
        raise KwsKdError("--stream needs at least one model (--tflite FILE or --run RUN)")
    if suppression_ms < 0 or tolerance_ms < 0:
        raise KwsKdError(f"--suppression-ms and --tolerance-ms must be >= 0 (got {suppression_ms}, {tolerance_ms})")
    stream = stream or read_stream(stream_dir)
    for s in scorers:
        check_scorer(stream, s)
    thresholds = default_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
    options = {"suppression_s": suppression_ms / 1000.0, "tolerance_s": tolerance_ms / 1000.0}
    keywords = [e for e in stream.events if not al.is_filler(e.label)]
    report = {
        "stream": str(stream.root),
        "audio_seconds": stream.seconds,
        "audio_hours": stream.seconds / 3600.0,
        "files": len(stream.files),
        "keywords": len(keywords),
        "filler_clips": len(stream.events) - len(keywords),
        "settings": {"suppression_ms": suppression_ms, "tolerance_ms": tolerance_ms,
                     "thresholds": [float(t) for t in thresholds], "reference_threshold": REFERENCE_THRESHOLD,
                     "operating_point_rule": OPERATING_RULE, "fa_kinds": list(FA_KINDS)},
        "models": [],
    }
    names = _unique_names([s.name for s in scorers])
    for name, scorer in zip(names, scorers):
        files, busy = score_stream(stream, scorer, progress)
        points = sweep(files, stream.events, scorer.labels, thresholds, **options)
        report["models"].append({
            "name": name,
            "kind": scorer.kind,
            "path": str(scorer.path),
            "hop_ms": scorer.hop_ms,
            "window_seconds": scorer.window_samples / scorer.sidecar.sample_rate,
            "smoothing_windows": scorer.windows,
            "average_window_ms": scorer.windows * scorer.hop_ms,
            "hops": int(sum(len(f.times_s) for f in files)),
            "processing_seconds": busy,
            "real_time_factor": busy / stream.seconds if stream.seconds else float("nan"),
            "threads": 1,
            "operating_points": {f"{t:g}": operating_point(points, t) for t in TARGET_FA_PER_HOUR},
            "at_reference_threshold": point_at(points, REFERENCE_THRESHOLD),
            "sweep": [{k: v for k, v in p.items() if k != "per_keyword"} for p in points],
        })
    out_dir = Path(out_dir) if out_dir else scorers[0].path.parent if scorers[0].kind != "keras" else scorers[0].path
    report["outputs"] = write_outputs(report, out_dir, stream.root.name)
    return report


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


# ---------------------------------------------------------------- outputs


SWEEP_COLUMNS = ("model", "threshold", "frr", "fa_per_hour", "false_alarms", "misses", "keywords", *(f"fa_{k}" for k in FA_KINDS))
KEYWORD_COLUMNS = ("model", "operating_point", "threshold", "label", "keywords", "misses", "frr", "false_alarms", "fa_per_hour")


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _operating(model: dict) -> list[tuple[str, dict]]:
    named = [(f"{k} FA/h", p) for k, p in model["operating_points"].items()]
    named.append((f"threshold {REFERENCE_THRESHOLD:g}", model["at_reference_threshold"]))
    return [(n, p) for n, p in named if p is not None]


def write_outputs(report: dict, out_dir: Path, stream_name: str) -> dict:
    """stream_eval_<stream>.json, .csv (sweep), _keywords.csv (per keyword at the operating points), stream_det_<stream>.png."""
    from kws_kd.atomic import atomic_write_text
    from kws_kd.run import write_json

    paths = {"json": out_dir / f"stream_eval_{stream_name}.json", "sweep_csv": out_dir / f"stream_eval_{stream_name}.csv",
             "keywords_csv": out_dir / f"stream_eval_{stream_name}_keywords.csv",
             "det_png": out_dir / f"stream_det_{stream_name}.png"}
    sweep_rows = [list(SWEEP_COLUMNS)]
    kw_rows = [list(KEYWORD_COLUMNS)]
    for m in report["models"]:
        for p in m["sweep"]:
            sweep_rows.append([m["name"], p["threshold"], p["frr"], p["fa_per_hour"], p["false_alarms"], p["misses"],
                               p["keywords"], *(p["fa_kinds"][k] for k in FA_KINDS)])
        for name, p in _operating(m):
            for lab, r in p["per_keyword"].items():
                kw_rows.append([m["name"], name, p["threshold"], lab, r["keywords"], r["misses"], r["frr"],
                                r["false_alarms"], r["fa_per_hour"]])
    out = {k: str(v) for k, v in paths.items()}
    save_det_png(report, paths["det_png"])
    atomic_write_text(paths["sweep_csv"], _csv(sweep_rows))
    atomic_write_text(paths["keywords_csv"], _csv(kw_rows))
    write_json(paths["json"], {**report, "outputs": out})
    return out


def save_det_png(report: dict, path: Path) -> None:
    """DET curve: FRR (%) against FA/h on a log axis, one curve per model; zero FA/h drawn at half of one alarm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kws_kd.atomic import atomic_path

    hours = report["audio_hours"]
    floor = min(0.5 / hours, 0.1) if hours > 0 else 0.1  # left of the 0.5 FA/h target, where zero belongs
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for m in report["models"]:
        pts = sorted(m["sweep"], key=lambda p: -p["threshold"])
        x = np.maximum([p["fa_per_hour"] for p in pts], floor)
        y = [100.0 * p["frr"] for p in pts]
        (line,) = ax.plot(x, y, marker=".", markersize=4, label=f"{m['name']} (RTF {m['real_time_factor']:.3g})")
        op = m["operating_points"].get("1")
        if op is not None:
            ax.plot([max(op["fa_per_hour"], floor)], [100.0 * op["frr"]], "o", color=line.get_color(), markersize=7,
                    fillstyle="none")
    for t in TARGET_FA_PER_HOUR:
        ax.axvline(t, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"false alarms per hour (0 drawn at {floor:.2g})")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{Path(report['stream']).name}: {hours:.2f} h, {report['keywords']} keywords "
                 f"(circle: best at <= 1 FA/h)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def format_stream_report(report: dict) -> str:
    """Human summary printed by `kws-kd eval --stream`."""
    lines = [f"{report['audio_hours']:.2f} h of audio in {report['files']} files, {report['keywords']} keywords, "
             f"{report['filler_clips']} unknown-word clips"]
    lines.append("operating points: the best swept threshold at or under each FA/h target (measured, not interpolated)")
    for m in report["models"]:
        lines.append(f"{m['name']} ({m['kind']}, hop {m['hop_ms']:g} ms, mean of {m['smoothing_windows']} hops): "
                     f"real-time factor {m['real_time_factor']:.4f} ({m['processing_seconds']:.1f} s)")
        for name, p in _operating(m):
            lines.append(f"  {name:>15s}: threshold {p['threshold']:.4g}  FRR {100 * p['frr']:.2f}%  "
                         f"FA/h {p['fa_per_hour']:.2f} ({p['false_alarms']} false alarms)")
        for t, p in m["operating_points"].items():
            if p is None:
                lines.append(f"  {t + ' FA/h':>15s}: not reached by any swept threshold")
        best = m["operating_points"].get("1") or m["at_reference_threshold"]
        if best is not None:
            for lab, r in best["per_keyword"].items():
                lines.append(f"    {lab:>12s}  FRR {100 * r['frr']:6.2f}% of {r['keywords']:4d}  "
                             f"false alarms {r['false_alarms']}")
    lines += [f"{k}: {v}" for k, v in report.get("outputs", {}).items()]
    return "\n".join(lines)
