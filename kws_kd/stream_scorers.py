"""Scorers: one model over one stream file -> per-hop smoothed posteriors, as the app computes them.

Whole-clip .tflite files go through `app_logic.KeywordStream` itself (ring
buffer, hop schedule, int8 input rule), streaming .tflite files hop by hop
with their state carried over the whole file, Keras runs on batched sliding
windows scheduled like KeywordStream. Posteriors and smoothing are the app
mirror's `posteriors` and `PosteriorSmoother`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from kws_kd import app_logic as al
from kws_kd.errors import KwsKdError

DEFAULT_HOP_MS = 100  # whole-clip models: 10 inferences per second; a 1 s keyword sits whole in ~10 windows
DEFAULT_AVERAGE_WINDOW_MS = 500  # RecognizeCommands' average_window_duration_ms



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
    from kws_kd.tflite.runner import TFLiteClassifier

    path = Path(path)
    if not path.is_file():
        raise KwsKdError(f"{path}: no such .tflite file")
    sidecar = al.load_sidecar(al.sidecar_path_for(path))  # one-line error naming FILE.json when it is missing
    if sidecar.is_streaming:
        return _streaming_scorer(path, sidecar, average_window_ms, threads)
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


def _streaming_scorer(path: Path, side: al.Sidecar, average_window_ms: float, threads: int) -> Scorer:
    from kws_kd.tflite.streaming import StreamingLayout, StreamingTFLite

    layout = StreamingLayout.from_dict(side.extra["streaming"])
    sidecar = float_sidecar(side.labels, side.multi_label, side.sample_rate, layout.hop_samples, side.model)
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

    clip = side.input_samples or layout.window_samples  # the clip length it was verified on
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


