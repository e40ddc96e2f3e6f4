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

Two halves, kept apart so the metrics are testable without TensorFlow:

* pure numpy (`ScoredFile`, `detections`, `match`, `score_threshold`,
  `sweep`, `operating_point`): smoothed posteriors + hop times in, counts out.
  Decoding and announcing are `kws_kd.app_logic.decode_batch` and
  `detection_events`, the Android app mirror's own rules;
* scorers that run a model over a stream file and return per-hop smoothed
  posteriors through the app mirror's `posteriors` and `PosteriorSmoother`:
  whole-clip .tflite files through `app_logic.KeywordStream` itself (ring
  buffer, hop schedule, int8 input rule), streaming .tflite files hop by hop
  with their state carried over the whole file, Keras runs on batched sliding
  windows scheduled like KeywordStream.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kws_kd import app_logic as al
from kws_kd.data.stream import Stream, StreamEvent, read_stream
from kws_kd.errors import KwsKdError

DEFAULT_HOP_MS = 100  # whole-clip models: 10 inferences per second; a 1 s keyword sits whole in ~10 windows
DEFAULT_AVERAGE_WINDOW_MS = 500  # RecognizeCommands' average_window_duration_ms
DEFAULT_SUPPRESSION_MS = 500  # RecognizeCommands' suppression_ms
DEFAULT_TOLERANCE_MS = 1500  # test_streaming_accuracy.py's time_tolerance_ms
REFERENCE_THRESHOLD = 0.7  # RecognizeCommands' detection_threshold
TARGET_FA_PER_HOUR = (0.5, 1.0)
FA_KINDS = ("duplicate", "wrong_label", "unknown", "noise")
OPERATING_RULE = ("lowest FRR among the swept thresholds whose measured FA/h is at or under the target "
                  "(ties: the higher threshold); not interpolated")


def default_thresholds() -> np.ndarray:
    """0.05-0.95 in steps of 0.025, then 13 log-spaced steps to 0.9999 (FA/h moves most near 1)."""
    coarse = np.arange(0.05, 0.9501, 0.025)
    fine = 1.0 - np.logspace(math.log10(0.05), -4, 13)
    return np.unique(np.round(np.r_[coarse, fine, REFERENCE_THRESHOLD], 6))


# ---------------------------------------------------------------- pure numpy: detection and metrics


@dataclass
class ScoredFile:
    """One stream file scored by one model: smoothed posteriors [N, C] at hop end times [N] (seconds)."""

    name: str
    seconds: float
    times_s: np.ndarray
    smoothed: np.ndarray


def detections(scored: ScoredFile, labels: Sequence[str], threshold: float, suppression_s: float) -> tuple[np.ndarray, list[str]]:
    """(times, labels) of the announcements the app would make at `threshold` (app_logic's rules)."""
    if len(scored.times_s) == 0:
        return np.zeros(0), []
    index, _, detected = al.decode_batch(scored.smoothed, labels, threshold)
    fired = al.detection_events(scored.times_s, index, detected, suppression_s)
    return np.asarray(scored.times_s, np.float64)[fired], [labels[i] for i in index[fired]]


@dataclass
class Match:
    """Outcome of one file: which keywords were found, and every false alarm as (time, label, kind)."""

    keywords: list[StreamEvent]
    found: np.ndarray
    false_alarms: list[tuple[float, str, str]] = field(default_factory=list)


def match(det_times: Sequence[float], det_labels: Sequence[str], events: Sequence[StreamEvent], tolerance_s: float) -> Match:
    """Match announcements to labelled clips, earliest announcement first.

    An announcement of label L at time t finds the earliest-starting keyword
    clip of label L not found yet whose span widened by `tolerance_s` on both
    sides holds t. Otherwise it is a false alarm of kind `duplicate` (that
    keyword was already found), `wrong_label` (inside another keyword's
    window), `unknown` (inside a filler clip's window, e.g. `_unknown_`) or
    `noise`. Filler clips (labels starting with '_') are never to be found.
    """
    keywords = sorted((e for e in events if not al.is_filler(e.label)), key=lambda e: (e.start_s, e.end_s))
    fillers = [e for e in events if al.is_filler(e.label)]
    k_lo = np.array([e.start_s - tolerance_s for e in keywords])
    k_hi = np.array([e.end_s + tolerance_s for e in keywords])
    k_lab = np.array([e.label for e in keywords], dtype=object)
    f_lo = np.array([e.start_s - tolerance_s for e in fillers])
    f_hi = np.array([e.end_s + tolerance_s for e in fillers])
    found = np.zeros(len(keywords), dtype=bool)
    out = Match(keywords, found)
    for t, lab in sorted(zip((float(x) for x in det_times), det_labels)):
        inside = (k_lo <= t) & (t <= k_hi)
        same = inside & (k_lab == lab)
        free = np.flatnonzero(same & ~found)
        if len(free):
            found[free[0]] = True
            continue
        if same.any():
            kind = "duplicate"
        elif inside.any():
            kind = "wrong_label"
        elif ((f_lo <= t) & (t <= f_hi)).any():
            kind = "unknown"
        else:
            kind = "noise"
        out.false_alarms.append((t, lab, kind))
    return out


def _rates(keywords: int, misses: int, false_alarms: int, hours: float) -> dict:
    return {"keywords": keywords, "misses": misses, "frr": misses / keywords if keywords else float("nan"),
            "false_alarms": false_alarms, "fa_per_hour": false_alarms / hours if hours > 0 else float("nan")}


def score_threshold(
    files: Sequence[ScoredFile],
    events: Sequence[StreamEvent],
    labels: Sequence[str],
    threshold: float,
    *,
    suppression_s: float = DEFAULT_SUPPRESSION_MS / 1000,
    tolerance_s: float = DEFAULT_TOLERANCE_MS / 1000,
) -> dict:
    """FRR, FA/h (over all the audio), false alarms by kind and per keyword, at one threshold."""
    hours = sum(f.seconds for f in files) / 3600.0
    per_kw: dict[str, list[int]] = {}  # label -> [keywords, misses, false alarms]
    kinds = dict.fromkeys(FA_KINDS, 0)
    for lab in sorted({e.label for e in events if not al.is_filler(e.label)}):
        per_kw[lab] = [0, 0, 0]
    for f in files:
        times, labs = detections(f, labels, threshold, suppression_s)
        m = match(times, labs, [e for e in events if e.file == f.name], tolerance_s)
        for kw, hit in zip(m.keywords, m.found):
            per_kw[kw.label][0] += 1
            per_kw[kw.label][1] += int(not hit)
        for _, lab, kind in m.false_alarms:
            per_kw.setdefault(lab, [0, 0, 0])[2] += 1
            kinds[kind] += 1
    total = [sum(v[i] for v in per_kw.values()) for i in range(3)]
    return {"threshold": float(threshold), **_rates(*total, hours), "fa_kinds": kinds,
            "per_keyword": {lab: _rates(*v, hours) for lab, v in sorted(per_kw.items())}}


def sweep(files: Sequence[ScoredFile], events: Sequence[StreamEvent], labels: Sequence[str],
          thresholds: Sequence[float] | None = None, **options) -> list[dict]:
    """`score_threshold` at every threshold (default: `default_thresholds()`), lowest threshold first."""
    ts = default_thresholds() if thresholds is None else np.sort(np.asarray(thresholds, np.float64))
    return [score_threshold(files, events, labels, float(t), **options) for t in ts]


def operating_point(points: Sequence[dict], target_fa_per_hour: float) -> dict | None:
    """The best swept point at or under `target_fa_per_hour` (see OPERATING_RULE); None when none reaches it."""
    ok = [p for p in points if p["fa_per_hour"] <= target_fa_per_hour + 1e-12]
    if not ok:
        return None
    return min(ok, key=lambda p: (p["frr"], p["fa_per_hour"], -p["threshold"]))


def point_at(points: Sequence[dict], threshold: float) -> dict | None:
    return next((p for p in points if abs(p["threshold"] - threshold) < 1e-9), None)


# ---------------------------------------------------------------- scorers: a model over one stream file


def smoothing_windows(average_window_ms: float, hop_ms: float) -> int:
    """How many hops the posterior mean covers: ~`average_window_ms` of them, at least one."""
    if average_window_ms <= 0:
        raise KwsKdError(f"--average-window-ms must be positive, got {average_window_ms}")
    return max(1, int(round(average_window_ms / hop_ms)))


def float_sidecar(labels: Sequence[str], multi_label: bool, sample_rate: int, input_samples: int, model: str = "") -> al.Sidecar:
    """An app_logic.Sidecar for float I/O and logits output, so `al.posteriors` applies to any float logits."""
    return al.Sidecar(
        model=model, quantize="float32", labels=tuple(labels), multi_label=bool(multi_label),
        sample_rate=int(sample_rate), input_samples=int(input_samples),
        input=al.TensorSpec("audio", (1, int(input_samples)), "float32", None),
        output=al.TensorSpec("logits", (1, len(labels)), "float32", None, "logits"),
    )


Tick = Callable[[int], None]


@dataclass
class Scorer:
    """One model ready to score stream files; `score(pcm) -> (end_samples [N], smoothed [N, C])`."""

    name: str
    kind: str  # "tflite", "tflite-streaming", "keras"
    path: Path
    sidecar: al.Sidecar  # labels, multi-label, rate; float I/O except for whole-clip .tflite files
    hop_samples: int
    window_samples: int
    windows: int  # smoothing windows
    _score: Callable[[np.ndarray, Tick], tuple[np.ndarray, np.ndarray]]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.sidecar.labels

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sidecar.sample_rate

    def score(self, pcm: np.ndarray, tick: Tick = lambda n: None) -> tuple[np.ndarray, np.ndarray]:
        return self._score(np.asarray(pcm, np.int16).reshape(-1), tick)


def keyword_stream_scorer(name: str, kind: str, path: Path, sidecar: al.Sidecar, model: al.Model, hop_ms: int,
                          average_window_ms: float) -> Scorer:
    """Score through `app_logic.KeywordStream` itself: what the Android app computes, hop for hop."""
    windows = smoothing_windows(average_window_ms, hop_ms)
    hop = al.hop_samples(hop_ms, sidecar.sample_rate)

    def score(pcm: np.ndarray, tick: Tick):
        stream = al.KeywordStream(sidecar, model, hop_ms, windows, threshold=1.0)
        ends, smoothed = [], []
        chunk = sidecar.sample_rate  # feed one second at a time: progress, and chunking changes nothing
        for start in range(0, len(pcm), chunk):
            for r in stream.feed(pcm[start : start + chunk]):
                ends.append(r.end_sample)
                smoothed.append(r.smoothed)
            tick(len(pcm[start : start + chunk]))
        return np.array(ends, np.int64), np.array(smoothed, np.float64).reshape(-1, len(sidecar.labels))

    return Scorer(name, kind, path, sidecar, hop, sidecar.input_samples, windows, score)


def tflite_scorer(path: str | Path, *, hop_ms: int = DEFAULT_HOP_MS, average_window_ms: float = DEFAULT_AVERAGE_WINDOW_MS,
                  threads: int = 1) -> Scorer:
    """A .tflite file with its sidecar: whole-clip files on a sliding window, streaming files hop by hop."""
    from kws_kd.tflite.sidecar import read_sidecar

    path = Path(path)
    if not path.is_file():
        raise KwsKdError(f"{path}: no such .tflite file")
    side = read_sidecar(path)  # one-line error naming FILE.json when it is missing
    if side.get("streaming"):
        return _streaming_scorer(path, side, average_window_ms, threads)
    from kws_kd.tflite.runner import TFLiteClassifier

    sidecar = al.load_sidecar(al.sidecar_path_for(path))
    clf = TFLiteClassifier(path, num_threads=threads)
    if np.dtype(clf.input["dtype"]).name != sidecar.input.dtype or int(np.prod(clf.input["shape"])) != sidecar.input_samples:
        raise KwsKdError(f"{al.sidecar_path_for(path)}: input {sidecar.input.dtype} x {sidecar.input_samples} does not "
                         f"match {path.name} ({np.dtype(clf.input['dtype']).name} x {int(np.prod(clf.input['shape']))})")
    interp, inp, out = clf.interpreter, clf.input, clf.output

    def model(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp["index"], np.asarray(x).reshape(inp["shape"]).astype(inp["dtype"]))
        interp.invoke()
        return interp.get_tensor(out["index"])

    return keyword_stream_scorer(path.stem, "tflite", path, sidecar, model, hop_ms, average_window_ms)


def _streaming_scorer(path: Path, side: dict, average_window_ms: float, threads: int) -> Scorer:
    from kws_kd.tflite.streaming import StreamingLayout, StreamingTFLite

    layout = StreamingLayout.from_dict(side["streaming"])
    try:
        sidecar = float_sidecar(side["labels"], side.get("multi_label", False), side["sample_rate"], layout.hop_samples,
                                side.get("model", ""))
    except (KeyError, TypeError) as exc:
        raise KwsKdError(f"{al.sidecar_path_for(path)}: sidecar field {exc} is missing or malformed") from None
    runner = StreamingTFLite(path, layout, num_threads=threads)
    hop = layout.hop_samples
    windows = smoothing_windows(average_window_ms, 1000.0 * hop / sidecar.sample_rate)

    def score(pcm: np.ndarray, tick: Tick):
        """From silence (zero tail and state, as a ring buffer starts), every hop of the file, state never reset."""
        runner.reset()
        x = al.pcm_to_float(pcm)
        smoother = al.PosteriorSmoother(windows)
        frames = len(x) // hop
        smoothed = np.zeros((frames, len(sidecar.labels)), np.float64)
        step = max(1, sidecar.sample_rate // hop)  # progress once per second of audio
        for k in range(frames):
            smoothed[k] = smoother.push(al.posteriors(runner.push(x[k * hop : (k + 1) * hop]), sidecar))
            if (k + 1) % step == 0:
                tick(step * hop)
        tick(len(x) - (frames // step) * step * hop)
        return (np.arange(1, frames + 1, dtype=np.int64) * hop), smoothed

    clip = int(side.get("input_samples") or layout.window_samples)  # the clip length it was verified on
    return Scorer(path.stem, "tflite-streaming", path, sidecar, hop, clip, windows, score)


def keras_scorer(run_dir: str | Path, *, hop_ms: int = DEFAULT_HOP_MS, average_window_ms: float = DEFAULT_AVERAGE_WINDOW_MS,
                 batch_size: int = 32) -> Scorer:
    """A run's best weights on a sliding window of its clip length, batched; hop schedule as KeywordStream's."""
    from kws_kd.run import load_run

    run = load_run(run_dir)
    model = run.build_model(weights="best", strip=True)
    sidecar = float_sidecar(run.labels, run.multi_label, run.config.sample_rate, run.clip_samples(), run.model_name)
    return model_scorer(run.path.name, run.path, model, sidecar, hop_ms=hop_ms, average_window_ms=average_window_ms,
                        batch_size=batch_size)


def model_scorer(name: str, path: Path, model, sidecar: al.Sidecar, *, hop_ms: int = DEFAULT_HOP_MS,
                 average_window_ms: float = DEFAULT_AVERAGE_WINDOW_MS, batch_size: int = 32) -> Scorer:
    """Any Keras model audio [B, window] -> logits [B, C] (or [logits, ...]) on batched sliding windows."""
    import tensorflow as tf

    forward = tf.function(lambda audio: model(audio, training=False), reduce_retracing=True)
    window, hop = sidecar.input_samples, al.hop_samples(hop_ms, sidecar.sample_rate)
    windows = smoothing_windows(average_window_ms, hop_ms)

    def score(pcm: np.ndarray, tick: Tick):
        x = al.pcm_to_float(pcm)
        ends = np.arange(window, len(x) + 1, hop, dtype=np.int64)  # KeywordStream's schedule: window + k * hop
        smoother = al.PosteriorSmoother(windows)
        smoothed = np.zeros((len(ends), len(sidecar.labels)), np.float64)
        if len(ends):
            views = np.lib.stride_tricks.sliding_window_view(x, window)[::hop]
            for b in range(0, len(ends), batch_size):
                out = forward(tf.constant(np.ascontiguousarray(views[b : b + batch_size])))
                logits = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
                for j, row in enumerate(logits):
                    smoothed[b + j] = smoother.push(al.posteriors(row, sidecar))
                tick(len(logits) * hop)
        tick(max(0, len(x) - len(ends) * hop))
        return ends, smoothed

    return Scorer(name, "keras", Path(path), sidecar, hop, window, windows, score)


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
