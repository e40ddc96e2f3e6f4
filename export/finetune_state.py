"""A fine-tune run folder's files and its exact-resume state.

OUT/state/state.pt holds everything a resumed run needs to continue as an
unbroken one would have (model, optimizer, scheduler, torch RNG, step, best,
history, wall time) plus a fingerprint of the options that must not change
across a resume; OUT/metrics.csv is the validation history. Writes are atomic,
so a kill leaves the previous state.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from kws_kd.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    from export.finetune_setup import FinetuneOptions


STATE_FILE = "state/state.pt"
BEST_DIR = "best"
LAST_DIR = "last"
METRICS_CSV = "metrics.csv"
OPTIONS_JSON = "finetune.json"
TEST_JSON = "test_metrics.json"


@dataclass
class TrainState:
    """The loop's progress: what the resume state saves besides the torch objects."""

    step: int = 0
    best_metric: float = -math.inf
    best_step: int = -1
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time spent in the loop, summed over all launches of this run


def resume_fingerprint(opts: FinetuneOptions) -> dict:
    """Options that must not change across a resume."""
    keys = ("config", "checkpoint", "pooling", "batch_size", "lr", "weight_decay", "warmup_steps", "seed",
            "init_from", "attention_dropout")
    return {k: getattr(opts, k) for k in keys}


_FINGERPRINT_ADDED = {"init_from": None, "attention_dropout": None}  # keys newer than some saved runs


def fingerprint_diff(saved: dict, now: dict) -> dict:
    """{key: (saved, now)} for every fingerprint key that differs (keys missing from old states take their default)."""
    return {k: (saved.get(k, _FINGERPRINT_ADDED.get(k)), v) for k, v in now.items()
            if saved.get(k, _FINGERPRINT_ADDED.get(k)) != v}


def save_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
               state: TrainState, opts: FinetuneOptions, labels: list[str]) -> None:
    """Write the resume state to `path` atomically (weights on the CPU)."""
    payload = {
        "step": state.step,
        "best_metric": state.best_metric,
        "best_step": state.best_step,
        "history": state.history,
        "train_seconds": state.train_seconds,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "labels": labels,
        "fingerprint": resume_fingerprint(opts),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def write_history(out: Path, history: list[dict]) -> None:
    """OUT/metrics.csv: one row per validation (columns: every key seen, in first-seen order)."""
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    sio = io.StringIO()
    w = csv.DictWriter(sio, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(out / METRICS_CSV, sio.getvalue())
