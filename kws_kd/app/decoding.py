"""Smoothing, decoding and announcing keyword decisions (numpy only; Java: PosteriorSmoother, Announcer)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kws_kd.errors import KwsKdError

__all__ = [
    "DEFAULT_SMOOTHING_WINDOWS", "DEFAULT_SUPPRESSION_S", "DEFAULT_THRESHOLD", "Announcer", "Decision",
    "PosteriorSmoother", "decode", "decode_batch", "detection_events", "is_filler",
]

DEFAULT_SMOOTHING_WINDOWS = 3
DEFAULT_THRESHOLD = 0.5
DEFAULT_SUPPRESSION_S = 0.5


class PosteriorSmoother:
    """Mean of the last `windows` posterior vectors (fewer until it has seen that many)."""

    def __init__(self, windows: int):
        if windows <= 0:
            raise KwsKdError(f"smoothing window count must be positive, got {windows}")
        self.windows = windows
        self._history: list[np.ndarray] = []

    def push(self, p: np.ndarray) -> np.ndarray:
        self._history.append(np.asarray(p, dtype=np.float64).copy())
        if len(self._history) > self.windows:
            self._history.pop(0)
        total = np.zeros_like(self._history[0])
        for h in self._history:  # oldest first, as in Java
            total = total + h
        return total / len(self._history)


@dataclass(frozen=True)
class Decision:
    index: int
    label: str
    confidence: float
    detected: bool


def is_filler(label: str) -> bool:
    """Labels such as `_silence_` and `_unknown_` are never announced as keywords."""
    return label.startswith("_")


def decode_batch(smoothed: np.ndarray, labels: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decode` for many hops at once: (index [N], confidence [N], detected [N]) of smoothed [N, C].

    This is the one decoding rule: `decode` is this on a single row, so the
    app's per-hop decision and a threshold sweep over a long stream
    (`kws_kd.stream_eval`) cannot drift apart.
    """
    smoothed = np.asarray(smoothed, dtype=np.float64)
    if smoothed.ndim != 2 or smoothed.shape[1] != len(labels):
        raise ValueError(f"smoothed posteriors of shape {smoothed.shape} do not match {len(labels)} labels")
    index = np.argmax(smoothed, axis=1)  # first maximum, like the Java loop
    conf = smoothed[np.arange(len(smoothed)), index]
    filler = np.array([is_filler(label) for label in labels], dtype=bool)
    return index, conf, (conf >= threshold) & ~filler[index]


def decode(smoothed: np.ndarray, labels: Sequence[str], threshold: float) -> Decision:
    index, conf, detected = decode_batch(np.asarray(smoothed, dtype=np.float64).reshape(1, -1), labels, threshold)
    i = int(index[0])
    return Decision(i, labels[i], float(conf[0]), bool(detected[0]))


def detection_events(
    times_s: np.ndarray, index: np.ndarray, detected: np.ndarray, suppression_s: float = DEFAULT_SUPPRESSION_S
) -> np.ndarray:
    """Indices of the hops at which a keyword is announced: once per onset, never faster than `suppression_s`.

    Why: a keyword keeps its smoothed posterior above the threshold for many
    hops (for a whole window with whole-clip models), but the user must hear it
    once. A hop fires when it is `detected` and the hop before was not detected
    with the same label (an onset), and at least `suppression_s` have passed
    since the last announcement of any label (TensorFlow's RecognizeCommands
    suppression, 500 ms). An onset inside the suppression time is dropped for
    good: it does not fire later while the label stays detected. Causal, so an
    app can apply it hop by hop; `times_s` are the hops' end times.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    index = np.asarray(index).reshape(-1)
    detected = np.asarray(detected, dtype=bool).reshape(-1)
    if not len(times) == len(index) == len(detected):
        raise ValueError("times, index and detected must have one entry per hop")
    held = np.zeros_like(detected)
    held[1:] = detected[:-1] & (index[1:] == index[:-1])
    fired: list[int] = []
    last = -math.inf
    for i in np.flatnonzero(detected & ~held):
        if times[i] - last >= suppression_s - 1e-9:  # tolerance: hop times are sample counts / rate
            fired.append(int(i))
            last = times[i]
    return np.array(fired, dtype=np.int64)


class Announcer:
    """`detection_events`, one hop at a time (Java: Announcer): `push` says whether this hop announces.

    Same rule, same float arithmetic: a hop fires when it is detected, the hop
    before was not detected with the same label, and at least `suppression_s`
    (minus 1e-9) passed since the last announcement. `tests/test_app_logic_streaming.py`
    checks it against `detection_events` on random sequences.
    """

    def __init__(self, suppression_s: float = DEFAULT_SUPPRESSION_S):
        if not (suppression_s >= 0 and math.isfinite(suppression_s)):
            raise KwsKdError(f"suppression time must be a non-negative number of seconds, got {suppression_s}")
        self.suppression_s = float(suppression_s)
        self._last = -math.inf
        self._prev_index = -1
        self._prev_detected = False

    def push(self, time_s: float, index: int, detected: bool) -> bool:
        held = self._prev_detected and self._prev_index == index
        self._prev_index, self._prev_detected = int(index), bool(detected)
        if detected and not held and time_s - self._last >= self.suppression_s - 1e-9:
            self._last = time_s
            return True
        return False
