"""The teacher's loss and its deterministic evaluation pass (accuracy or mAP, in float32).

Shared by the fine-tune loop (validation and the final test), the shipping
step's measurements (`export/shipping.py`) and the tests, so every figure of a
teacher comes from this one function.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from export.teacher_data import fixed_batches
from export.teacher_model import TeacherClassifier
from kws_kd.audio import SAMPLE_RATE
from kws_kd.metrics import mean_average_precision


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Binary cross-entropy per class (multi-label) or cross-entropy (single-label), on float32 logits."""
    if multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    return torch.nn.functional.cross_entropy(logits, labels)


@torch.no_grad()
def evaluate(model: TeacherClassifier, source, seconds: float, *, batch_size: int = 16,
             limit: int | None = None, seed: int = 0, device="cpu", progress: bool = False,
             predictions: bool = False) -> dict:
    """Accuracy (or mAP) and loss on a deterministic pass over a split at `seconds`, in float32.

    `predictions=True` adds the per-clip argmax (single-label) in pass order."""
    was_training = model.training
    model.eval()
    n = int(round(seconds * SAMPLE_RATE))
    logits, labels = [], []
    total = len(source) if not limit else min(limit, len(source))
    bar = tqdm(total=total, desc=f"eval {seconds:g}s", disable=None if progress else True, leave=False, unit="clip")
    for batch in fixed_batches(source, n, batch_size, limit, seed):
        out = model(torch.from_numpy(batch.audio).to(device))
        logits.append(out.logits.float().cpu())
        labels.append(torch.from_numpy(batch.labels))
        bar.update(len(batch.audio))
    bar.close()
    model.train(was_training)
    lg, lb = torch.cat(logits), torch.cat(labels)
    loss = float(loss_fn(lg, lb, model.multi_label))
    if model.multi_label:
        metric = mean_average_precision(torch.sigmoid(lg).numpy(), lb.numpy())
        return {"metric": metric, "mAP": metric, "loss": loss, "clips": len(lb)}
    acc = float((lg.argmax(1) == lb).float().mean())
    out = {"metric": acc, "accuracy": acc, "loss": loss, "clips": len(lb)}
    if predictions:
        out["predictions"] = lg.argmax(1).tolist()
    return out
