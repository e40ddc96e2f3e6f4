"""Training throughput: steps/s per student at 1 s and 8 s, vanilla (lambda=0) vs KD (lambda=0.25).

Runs the real `kws_kd.train` loop (same custom step, same tf.data pipeline,
same teacher-target join) for a few steps on a generated WAV dataset with a
generated teacher store, and reports from the loop's own timers:

* per-step wall time (median and minimum over alternating vanilla/KD runs;
  the first step traces the graph and the last one validates: both excluded),
* KD overhead: KD step time / vanilla step time - 1 (goal: <= 10 %); the
  minimum is the least disturbed by other processes on a shared CPU,
* data wait: the share of wall time the loop spent waiting for the next batch
  (goal: ~0, i.e. the input pipeline is never the bottleneck).

    python benchmarks/train_throughput.py [--models lstm_p tc_resnet crnn att_rnn mhatt_rnn]
        [--seconds 1 8] [--steps 8] [--batch-size 32] [--repeats 2] [--out benchmarks/results/train_throughput.json]

Keep --steps small on the shared 2-core CPU; numbers are for comparison between
rows of one run, not absolute figures (other processes share the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STUDENTS = ["lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn"]
LABELS = ["a", "b", "c", "d"]


def make_data(folder: Path, seconds: float, train_clips: int, seed: int = 0) -> Path:
    """Noise clips with a short tone (label = its frequency) at a random offset, plus a teacher store."""
    from kws_kd.audio import write_wav
    from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest
    from kws_kd.rollout import RolloutOptions
    from kws_kd.store import init_store, make_meta, write_shard

    rng = np.random.default_rng(seed)
    sr, n = 16000, int(seconds * 16000)
    clips = []
    for split, count in (("train", train_clips), ("validation", 8), ("test", 0)):
        for k in range(count):
            li = k % len(LABELS)
            audio = rng.normal(0, 0.02, n)
            start = rng.uniform(0, seconds - 0.3)
            s0 = int(start * sr)
            audio[s0 : s0 + int(0.3 * sr)] += 0.5 * np.sin(2 * np.pi * (300 + 700 * li) * np.arange(int(0.3 * sr)) / sr)
            path = folder / "data" / f"{split}_{k}.wav"
            write_wav(path, np.clip(audio, -1, 1).astype(np.float32))
            clips.append(ClipRecord(f"{split}/{k}", split, (LABELS[li],), str(path), round(start, 3), round(start + 0.3, 3)))
    manifest = Manifest(root=str(folder / "data"), label_names=LABELS, clips=clips, clip_seconds=seconds)
    write_manifest(manifest, folder / "data")
    meta = make_meta(
        manifest_hash=manifest.content_hash(), labels=LABELS, multi_label=False, teacher_hash="bench", teacher={},
        frame_rate=50.0, sample_rate=sr, rollout=RolloutOptions(),
    )
    init_store(folder / "store", meta)
    frames = int(seconds * 50) - 1
    att = [rng.dirichlet(np.ones(frames)).astype(np.float32) for _ in clips]
    write_shard(
        folder / "store", meta, splits=("train", "validation"), shard_index=0, num_shards=1,
        clip_ids=[c.clip_id for c in clips], clip_splits=[c.split for c in clips], attentions=att,
        logits=rng.normal(size=(len(clips), len(LABELS))),
    )
    return folder


def measure(folder: Path, model: str, kd_lambda: float, steps: int, batch_size: int, tag: str) -> dict:
    """One short training run; per-step wall times from the loop's `on_step` hook.

    Step 1 (graph tracing) and the last step (it includes the validation pass)
    are left out. The data wait comes from the loop's own timer around `next()`.
    """
    from kws_kd.train import TrainOptions, train

    stamps: list[float] = []
    opts = TrainOptions(
        model=model, data=str(folder / "data"), out=str(folder / f"run_{model}_{kd_lambda}_{tag}"),
        teacher_store=str(folder / "store"), kd_lambda=kd_lambda, steps=steps, batch_size=batch_size,
        eval_every=steps, seed=0,
    )
    stats = train(opts, on_step=lambda step: stamps.append(time.perf_counter()), progress=False, evaluate_test=False)
    durations = np.diff(stamps)[:-1]
    timed = stats.end_step - stats.start_step - 1
    return {
        "step_s": durations.tolist(),
        "data_wait_s": stats.data_wait_seconds,
        "busy_s": stats.step_seconds + stats.data_wait_seconds,
        "timed_steps": timed,
        "first_step_s": stats.first_step_seconds,
    }


def summarise(parts: list[dict]) -> dict:
    d = np.concatenate([p["step_s"] for p in parts])
    wait = sum(p["data_wait_s"] for p in parts)
    busy = sum(p["busy_s"] for p in parts)
    return {
        "steps_timed": int(d.size),
        "step_ms_median": float(1000 * np.median(d)),
        "step_ms_min": float(1000 * d.min()),
        "steps_per_s": float(1.0 / np.median(d)),
        "data_wait_ms_per_step": float(1000 * wait / sum(p["timed_steps"] for p in parts)),
        "data_wait_share": float(wait / busy) if busy else float("nan"),
        "first_step_s": float(np.mean([p["first_step_s"] for p in parts])),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=STUDENTS)
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 8.0])
    ap.add_argument("--steps", type=int, default=8, help="steps per measurement (the first is excluded)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="alternating vanilla/KD runs per student and length")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_throughput.json"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-kd-train-bench-") as tmp:
        for seconds in args.seconds:
            folder = make_data(Path(tmp) / f"d{seconds:g}", seconds, train_clips=args.batch_size * args.steps)
            for model in args.models:
                parts: dict[str, list] = {"vanilla": [], "kd": []}
                for rep in range(args.repeats):  # alternate, so a burst of load hits both modes alike
                    parts["vanilla"].append(measure(folder, model, 0.0, args.steps, args.batch_size, f"r{rep}"))
                    parts["kd"].append(measure(folder, model, 0.25, args.steps, args.batch_size, f"r{rep}"))
                van, kd = summarise(parts["vanilla"]), summarise(parts["kd"])
                row = {
                    "model": model, "seconds": seconds, "batch_size": args.batch_size, "vanilla": van, "kd": kd,
                    "kd_overhead_median": kd["step_ms_median"] / van["step_ms_median"] - 1.0,
                    "kd_overhead_min": kd["step_ms_min"] / van["step_ms_min"] - 1.0,
                }
                rows.append(row)
                print(
                    f"{model:10s} {seconds:4.0f}s  vanilla {van['step_ms_median']:7.1f} ms (min {van['step_ms_min']:7.1f})  "
                    f"KD {kd['step_ms_median']:7.1f} ms (min {kd['step_ms_min']:7.1f})  overhead median "
                    f"{100 * row['kd_overhead_median']:+6.1f} % min {100 * row['kd_overhead_min']:+6.1f} %  "
                    f"data wait {100 * van['data_wait_share']:4.1f}/{100 * kd['data_wait_share']:4.1f} %",
                    flush=True,
                )
    print()
    print(
        f"{'model':10s} {'len':>4s} {'vanilla st/s':>12s} {'KD st/s':>8s} {'KD ovh (median)':>15s} {'KD ovh (min)':>12s} "
        f"{'data wait V/KD':>15s}"
    )
    for r in rows:
        print(
            f"{r['model']:10s} {r['seconds']:3.0f}s {r['vanilla']['steps_per_s']:12.2f} {r['kd']['steps_per_s']:8.2f} "
            f"{100 * r['kd_overhead_median']:+14.1f}% {100 * r['kd_overhead_min']:+11.1f}% "
            f"{100 * r['vanilla']['data_wait_share']:7.1f}/{100 * r['kd']['data_wait_share']:4.1f} %"
        )
    meta = {
        "host": platform.node(), "cpus": os.cpu_count(), "tensorflow": tf.__version__, "steps": args.steps,
        "repeats": args.repeats, "batch_size": args.batch_size,
        "load_average": os.getloadavg(), "note": "shared 2-core CPU; first step (tracing) excluded",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
