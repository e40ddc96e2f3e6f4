"""Keyword detection metrics on long streams, pure numpy: smoothed posteriors + hop times in, counts out.

`detections` decodes and announces with the Android app mirror's own rules
(`kws_kd.app_logic.decode_batch`, `detection_events`); `match` pairs the
announcements with the labelled keywords (false rejections, false alarms by
kind); `sweep` and `operating_point` turn thresholds into the DET curve and the
operating points of `kws-kd eval --stream` (`kws_kd.stream_eval`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from kws_kd import app_logic as al
from kws_kd.data.stream_folder import StreamEvent

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


