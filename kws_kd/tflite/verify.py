"""Check a freshly converted .tflite file against the Keras model it came from.

Both run on the same held-out clips; we report top-1 agreement, each one's
metric against the true labels, the largest logit difference, size and op
count. This is what `kws-kd export` prints after every conversion, and
`check_bounds` fails the export when the file is further from the Keras model
than its mode's documented bound (`BOUNDS`, docs/export.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
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
        "logit_error": relative_logit_error(lite, ref),
        "size_bytes": Path(tflite_path).stat().st_size,
        "op_count": int(sum(ops.values())),
        "op_types": len(ops),
    }
    if targets is not None and len(audio):
        report["keras"] = classification_metrics(ref, targets, multi_label)
        report["tflite"] = classification_metrics(lite, targets, multi_label)
    return report


@dataclass(frozen=True)
class Bound:
    """How far a converted file may be from its Keras model on the held-out clips (None: not checked).

    `logit_error`: the largest |TFLite - Keras| logit over every clip and class,
    relative to max(1, the largest |Keras logit|) (`relative_logit_error`).
    `metric_drop`: how much lower the file's accuracy (or mAP) may be than
    Keras's, in absolute terms.
    """

    logit_error: float | None = None
    metric_drop: float | None = None


#: Per `--quantize` mode (docs/export.md, "Verification bounds"). float32 is the
#: same maths (measured 4e-7..8e-7 on random students, 9.3e-6 absolute on a
#: paper-size TC-ResNet); float16 rounds the weights to 11 bits (measured
#: 7e-4..1e-3). dynamic and int8 quantize: a single logit can move by most of
#: the largest one (0.85 on the confident test TC-ResNet, whose decisions all
#: agree) and a low-margin model's top-1 decisions flip (11 % agreement on a
#: near-tie TC-ResNet whose accuracy stayed 16-19 %), so they are bounded by
#: the accuracy drop, not by logits or agreement.
BOUNDS = {
    "float32": Bound(logit_error=1e-4),
    "float16": Bound(logit_error=1e-2),
    "dynamic": Bound(metric_drop=0.10),
    "int8": Bound(metric_drop=0.10),
}


def relative_logit_error(lite: np.ndarray, ref: np.ndarray) -> float:
    """max |lite - ref| / max(1, max |ref|) over all clips and classes (nan without clips)."""
    if not len(ref):
        return float("nan")
    return float(np.max(np.abs(lite - ref)) / max(1.0, float(np.max(np.abs(ref)))))


def _metric(metrics: dict) -> float:
    return float(metrics["accuracy"] if "accuracy" in metrics else metrics["mAP"])


def check_bounds(report: dict, mode: str, label: str) -> None:
    """A one-line KwsKdError when `report` (from `verify_tflite`) is beyond `BOUNDS[mode]`."""
    bound = BOUNDS[mode]
    error = report["logit_error"]
    if bound.logit_error is not None and not error <= bound.logit_error:
        raise KwsKdError(f"{label}: the {mode} file is too far from the Keras model on {report['clips']} held-out "
                         f"clips: logit error {error:.3g} > {bound.logit_error:g} (max |diff| / max(1, max |logit|)); "
                         f"no file written")
    if bound.metric_drop is not None and "keras" in report:
        drop = _metric(report["keras"]) - _metric(report["tflite"])
        if drop > bound.metric_drop:
            raise KwsKdError(f"{label}: the {mode} file loses {drop:.3f} of the Keras model's metric on "
                             f"{report['clips']} held-out clips (bound {bound.metric_drop:g}); no file written")


def format_report(report: dict, label: str) -> str:
    """One human-readable block for the CLI."""
    lines = [f"{label}: {report['size_bytes'] / 1024:.1f} KiB, {report['op_count']} ops ({report['op_types']} types)"]
    lines.append(
        f"  on {report['clips']} held-out clips: top-1 agreement with Keras {100 * report['top1_agreement']:.2f} %, "
        f"max |logit diff| {report['max_abs_logit_diff']:.3g} (relative {report['logit_error']:.3g})"
    )
    if "keras" in report:
        for key in ("accuracy", "mAP"):
            if key in report["keras"]:
                lines.append(f"  {key}: Keras {report['keras'][key]:.4f}, TFLite {report['tflite'][key]:.4f}")
    return "\n".join(lines)
