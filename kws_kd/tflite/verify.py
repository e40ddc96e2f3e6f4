"""Check a freshly converted .tflite file against the Keras model it came from.

Both run on the same held-out clips; we report top-1 agreement, each one's
metric against the true labels, the largest logit difference, size and op
count. This is what `kws-kd export` prints after every conversion.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kws_kd.metrics import classification_metrics
from kws_kd.tflite.runner import TFLiteClassifier, op_counts


def keras_logits(model, audio: np.ndarray, batch_size: int = 1) -> np.ndarray:
    """Logits of a (possibly batch-1) Keras model, one batch at a time."""
    out = [np.asarray(model(audio[i : i + batch_size], training=False)) for i in range(0, len(audio), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def verify_tflite(
    tflite_path: str | os.PathLike,
    keras_model,
    audio: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    multi_label: bool = False,
    runner=None,
) -> dict:
    """Compare the .tflite file with `keras_model` on `audio` [N, samples].

    `runner` (anything with `logits_batch(audio)`, e.g. a `StreamingTFLite`)
    replaces the default whole-clip `TFLiteClassifier`.
    """
    clf = runner or TFLiteClassifier(tflite_path, num_threads=1)
    lite = clf.logits_batch(audio)
    ref = keras_logits(keras_model, audio, batch_size=int(keras_model.inputs[0].shape[0] or 1))
    ops = op_counts(tflite_path)
    report = {
        "clips": int(len(audio)),
        "top1_agreement": float(np.mean(np.argmax(lite, -1) == np.argmax(ref, -1))) if len(audio) else float("nan"),
        "max_abs_logit_diff": float(np.max(np.abs(lite - ref))) if len(audio) else float("nan"),
        "size_bytes": Path(tflite_path).stat().st_size,
        "op_count": int(sum(ops.values())),
        "op_types": len(ops),
    }
    if targets is not None and len(audio):
        report["keras"] = classification_metrics(ref, targets, multi_label)
        report["tflite"] = classification_metrics(lite, targets, multi_label)
    return report


def format_report(report: dict, label: str) -> str:
    """One human-readable block for the CLI."""
    lines = [f"{label}: {report['size_bytes'] / 1024:.1f} KiB, {report['op_count']} ops ({report['op_types']} types)"]
    lines.append(
        f"  on {report['clips']} held-out clips: top-1 agreement with Keras {100 * report['top1_agreement']:.2f} %, "
        f"max |logit diff| {report['max_abs_logit_diff']:.3g}"
    )
    if "keras" in report:
        for key in ("accuracy", "mAP"):
            if key in report["keras"]:
                lines.append(f"  {key}: Keras {report['keras'][key]:.4f}, TFLite {report['tflite'][key]:.4f}")
    return "\n".join(lines)
