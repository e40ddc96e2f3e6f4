"""Host latency of a .tflite file with LiteRT (ai-edge-litert), XNNPACK on by default.

Only `invoke()` is timed (input already set), after warm-up runs, so the figure
is the model's cost, not Python's. We report the median and the 90th
percentile: means are pulled up by the scheduler on a shared machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.tflite.runner import TFLiteClassifier
from kws_kd.tflite.streaming import streaming_runner


def time_invoke(fn, runs: int, warmup: int) -> np.ndarray:
    """Wall times in ms of `fn()` for `runs` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1000.0
    return out


def summarize_ms(times_ms: np.ndarray) -> dict:
    return {
        "median_ms": float(np.median(times_ms)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "min_ms": float(np.min(times_ms)),
        "runs": int(len(times_ms)),
    }


def host_latency(
    path: str | os.PathLike,
    *,
    threads: int = 1,
    runs: int = 50,
    warmup: int = 10,
    xnnpack: bool = True,
    seed: int = 0,
) -> dict:
    """Median/p90 latency (ms) of one inference of `path` on this machine's CPU.

    A streaming file (its sidecar says so) is timed per clip of its sidecar
    length, hop by hop, plus per hop (`streaming_latency`).
    """
    if xnnpack and streaming_runner(path) is not None:
        return {**streaming_latency(path, threads=threads, runs=runs, warmup=warmup, seed=seed), "xnnpack": True,
                "warmup": warmup}
    clf = TFLiteClassifier(path, num_threads=threads, xnnpack=xnnpack)
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, clf.input_samples).astype(np.float32)
    clf.set_audio(audio)
    stats = summarize_ms(time_invoke(clf.interpreter.invoke, runs, warmup))
    stats.update(
        {
            "model": Path(path).name,
            "threads": threads,
            "xnnpack": xnnpack,
            "warmup": warmup,
            "size_bytes": Path(path).stat().st_size,
            "input_samples": clf.input_samples,
        }
    )
    return stats


def streaming_latency(path: str | os.PathLike, *, threads: int = 1, runs: int = 20, warmup: int = 2,
                      seed: int = 0) -> dict:
    """Per-hop and per-clip latency (ms) of a streaming file: a clip is every hop of its sidecar length.

    The per-clip figure is what compares with a whole-clip file: the same audio,
    processed as it arrives.
    """
    found = streaming_runner(path, threads)
    if found is None:
        raise KwsKdError(f"{path}: not a streaming file (its sidecar has no streaming entry)")
    runner, samples = found
    clip = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    hop = clip[: runner.layout.hop_samples]
    per_hop = summarize_ms(time_invoke(lambda: runner.push(hop), max(runs * 10, 100), warmup * 10))
    per_clip = summarize_ms(time_invoke(lambda: runner.clip_logits(clip), runs, warmup))
    return {**per_clip, "hop_median_ms": per_hop["median_ms"], "hop_p90_ms": per_hop["p90_ms"],
            "frames": runner.layout.frames(samples), "threads": threads, "streaming": True,
            "model": Path(path).name, "size_bytes": Path(path).stat().st_size, "input_samples": samples}
