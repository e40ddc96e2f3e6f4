"""The callbacks `kws-kd train` hands to `fit()`, next to Keras's own TensorBoard and TerminateOnNaN.

A Keras "epoch" here is one validation interval (`steps_per_epoch =
eval_every`), so the epoch-end hooks are the run's validation points:

- `IntervalHistory` validates (the run's metric, the best-keeping one),
  writes a history row with the interval's mean train losses, and puts
  `val_metric` into the logs for the callbacks after it;
- `BestWeights`, a `keras.callbacks.ModelCheckpoint` that writes the
  *student's* weights atomically (a kill never leaves a half-written file);
- `ResumeCheckpoint` writes `last.weights.h5` and the resume state (every
  variable, the optimizer's slots, the step and the interval's loss sums) at
  each validation, and at the exact step of an interruption;
- `StepHook` calls the caller's `on_step(step)` and times steps.

Why not Keras's own `BackupAndRestore`: it resumes at epoch granularity, and
a run must resume mid-interval with the same batches and the same history.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kws_kd.run import BEST_WEIGHTS, LAST_WEIGHTS, write_history

LOSS_TERMS = ("loss", "cls", "kd", "logit_kd")


def save_weights_atomic(model, dest: Path) -> None:
    """Keras needs a `.weights.h5` name: save under a hidden one, then rename."""
    tmp = dest.with_name(f".{dest.name[: -len('.weights.h5')]}.tmp.weights.h5")
    model.save_weights(str(tmp))
    os.replace(tmp, dest)


class TrainState:
    """What the callbacks share: the step, the interval's loss sums, the history, and a non-finite loss."""

    def __init__(self, step: int, sums: np.ndarray, history: list[dict]):
        self.step = step
        self.sums = np.asarray(sums, np.float64)  # loss, cls, kd, logit_kd, steps
        self.history = history
        self.failed_step: int | None = None
        self.failed_value: float | None = None


class StepHook(keras.callbacks.Callback):
    """Counts steps, adds each step's losses to the interval sums, stops on a non-finite loss, calls `on_step`."""

    def __init__(self, state: TrainState, on_step: Callable[[int], None] | None):
        super().__init__()
        self.state, self.on_step = state, on_step
        self.first_step_seconds = 0.0
        self.step_seconds = 0.0
        self._t = 0.0
        self._begin = 0.0

    def on_train_begin(self, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        values = [float(logs[k]) for k in LOSS_TERMS]
        if not math.isfinite(values[0]):
            self.state.failed_step, self.state.failed_value = self.state.step + 1, values[0]
            self.model.stop_training = True
            return
        if self.first_step_seconds == 0.0:
            self.first_step_seconds = now - self._begin
        else:
            self.step_seconds += now - self._t
        self.state.step += 1
        self.state.sums += values + [1.0]
        if self.on_step is not None:
            self.on_step(self.state.step)


class IntervalHistory(keras.callbacks.Callback):
    """At each validation point: the metric on the validation split, a history row, `val_metric` in the logs."""

    def __init__(self, state: TrainState, out: Path, validate: Callable[[], tuple[float, float]],
                 lr_at: Callable[[int], float], metric_name: str, writer, progress: bool):
        super().__init__()
        self.state, self.out, self.validate, self.lr_at = state, out, validate, lr_at
        self.metric_name, self.writer, self.progress = metric_name, writer, progress
        self.begin = time.perf_counter()
        self.best = max((r["val_metric"] for r in state.history if r.get("val_metric") is not None),
                        default=-math.inf)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self.state.failed_step is not None:
            return
        step = self.state.step
        val_metric, val_loss = self.validate()
        n = max(self.state.sums[4], 1.0)
        row = {"step": step, "lr": self.lr_at(step - 1), "train_loss": self.state.sums[0] / n,
               "train_cls": self.state.sums[1] / n, "train_kd": self.state.sums[2] / n,
               "train_logit_kd": self.state.sums[3] / n, "val_loss": val_loss, "val_metric": val_metric,
               "best": val_metric > self.best, "seconds": round(time.perf_counter() - self.begin, 3)}
        self.best = max(self.best, val_metric)
        self.state.history.append(row)
        self.state.sums = np.zeros(5)
        write_history(self.out, self.state.history)
        with self.writer.as_default(step=step):
            for k in ("train_loss", "train_cls", "train_kd", "train_logit_kd", "val_loss", "val_metric", "lr"):
                tf.summary.scalar(k.replace("_", "/", 1), row[k])
        self.writer.flush()
        if logs is not None:
            logs["val_metric"], logs["val_loss"] = val_metric, val_loss
        if self.progress:
            print(f"step {step}: val {self.metric_name} {val_metric:.4f} (best {self.best:.4f}), "
                  f"val loss {val_loss:.4f}, {row['seconds']:.0f} s", flush=True)


class BestWeights(keras.callbacks.ModelCheckpoint):
    """Keras's best-on-validation keeping (monitor `val_metric`, max), writing the student atomically."""

    def __init__(self, student: keras.Model, out: Path, best_so_far: float, state: TrainState):
        super().__init__(str(out / BEST_WEIGHTS), monitor="val_metric", mode="max", save_best_only=True,
                         save_weights_only=True, initial_value_threshold=best_so_far, verbose=0)
        self.student, self.state = student, state

    def on_epoch_end(self, epoch, logs=None):
        if self.state.failed_step is None:
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):  # Keras's own best-keeping rule
            save_weights_atomic(self.student, Path(filepath))


class ResumeCheckpoint(keras.callbacks.Callback):
    """`last.weights.h5` and the resume checkpoint at each validation point (and on `save_now`)."""

    def __init__(self, state: TrainState, student: keras.Model, out: Path, manager, step_var, sums_var):
        super().__init__()
        self.state, self.student, self.out = state, student, out
        self.manager, self.step_var, self.sums_var = manager, step_var, sums_var
        self.saved_step = state.step if manager.latest_checkpoint else -1

    def on_epoch_end(self, epoch, logs=None):
        if self.state.failed_step is None:
            save_weights_atomic(self.student, self.out / LAST_WEIGHTS)
            self.save_now()

    def save_now(self) -> None:
        if self.state.step == self.saved_step:
            return
        self.step_var.assign(self.state.step)
        self.sums_var.assign(self.state.sums)
        self.manager.save(checkpoint_number=self.state.step)
        self.saved_step = self.state.step
