"""Classification metrics on numpy logits, shared by verification and `evaluate_tflite`."""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels)) if len(labels) else float("nan")


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Macro average precision over classes that have at least one positive."""
    aps = []
    for c in range(targets.shape[1]):
        pos = targets[:, c] > 0.5
        if not pos.any():
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        hits = pos[order].astype(np.float64)
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float(np.sum(precision * hits) / hits.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def classification_metrics(logits: np.ndarray, targets: np.ndarray, multi_label: bool) -> dict:
    """{"accuracy": ...} for single-label, {"mAP": ...} for multi-label; plus "clips"."""
    if multi_label:
        return {"mAP": mean_average_precision(logits, targets), "clips": int(len(targets))}
    return {"accuracy": accuracy(logits, targets), "clips": int(len(targets))}
