"""Classification metrics on numpy arrays: one implementation for every evaluator.

numpy only, so the torch teacher (`export/finetune.py`), the Keras evaluation
(`kws_kd.evaluate`) and the LiteRT checks (`kws_kd.tflite`) report the same
numbers for the same predictions.
"""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels)) if len(labels) else float("nan")


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class: mean of the precision at the rank of every positive (ties by stable order).

    NaN when the class has no positive (its AP is undefined, not zero).
    """
    targets = np.asarray(targets) > 0.5
    if not targets.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hits = targets[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].mean())


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray) -> list[float]:
    return [average_precision(scores[:, c], targets[:, c]) for c in range(targets.shape[1])]


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Macro AP over the classes that have at least one positive (the paper's FSD50K mAP)."""
    valid = [ap for ap in per_class_average_precision(scores, targets) if not np.isnan(ap)]
    return float(np.mean(valid)) if valid else float("nan")


def classification_metrics(logits: np.ndarray, targets: np.ndarray, multi_label: bool) -> dict:
    """{"accuracy": ...} for single-label, {"mAP": ...} for multi-label; plus "clips"."""
    if multi_label:
        return {"mAP": mean_average_precision(logits, targets), "clips": int(len(targets))}
    return {"accuracy": accuracy(logits, targets), "clips": int(len(targets))}
