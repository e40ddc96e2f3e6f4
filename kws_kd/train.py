"""`kws-kd train`: check the inputs, resolve the run config, then `fit()` a `TemporalDistiller` (resumable).

Everything that can be wrong with the inputs is checked before the first step
(`prepare`): option bounds, a store made for another manifest, train clips
missing from the store, a student whose n' exceeds the teacher's frame count,
NaN/inf in stored vectors. Teacher attention is interpolated to n' once per clip
into an [N, n'] array that travels with the batches (`kws_kd.train_data`).

Training is `keras.Model.fit` on `kws_kd.distiller.TemporalDistiller`, one
Keras epoch per validation interval, with Keras's TensorBoard and
TerminateOnNaN callbacks, Keras's best-on-validation `ModelCheckpoint`
(writing the student atomically) and the run's own callbacks for history and
resume state (`kws_kd.callbacks`).

Resuming: data order is a pure function of (seed, step) (`kws_kd.train_data`).
The checkpoint (`RUN/checkpoint`) holds every model variable (weights and
random-generator states), the optimizer's variables, the step and the running
loss sums of the current validation interval. It is written at every
validation and when the run is interrupted (Ctrl-C / SIGTERM), so a resumed
run continues at the same step with the same batches and produces the same
metrics history as an unbroken run, also mid-interval. A NaN/inf loss stops
the run with an error and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kws_kd.distill import DistillLoss, teacher_attention_targets, teacher_logit_targets
from kws_kd.errors import KwsKdError
from kws_kd.fit import TrainStats, fit_run
from kws_kd.options import check, config_fields
from kws_kd.run import CHECKPOINT_DIR, CONFIG_JSON, TENSORBOARD_DIR, TEST_METRICS, Run, RunConfig, load_run, \
    read_config, student_config_dict, write_config, write_json
from kws_kd.train_options import DEFAULT_LEARNING_RATES, TrainOptions

MISSING_SHOWN = 5

__all__ = ["TrainOptions", "Prepared", "TrainStats", "prepare", "train"]


@dataclass
class Prepared:
    """Validated inputs: the resolved config, the manifest and the teacher targets."""

    config: RunConfig
    manifest: object
    loss: DistillLoss
    train_ids: list[str]
    teacher_attention: np.ndarray | None  # [N_train, n']
    teacher_logits: np.ndarray | None  # [N_train, C]
    init_weights: Path | None = None


def _option_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainOptions)]


def prepare(opts: TrainOptions) -> Prepared:
    """Check every input and resolve the run config; nothing is written, no model is built."""
    from kws_kd.data.load import load_dataset
    from kws_kd.students.registry import attention_length, get_spec, make_config

    check(opts)
    loss = DistillLoss(kd_lambda=float(opts.kd_lambda), kl_direction=opts.kl_direction,
                       logit_kd_beta=float(opts.logit_kd_beta), logit_kd_temperature=float(opts.logit_kd_temperature))
    get_spec(opts.model)
    manifest = load_dataset(opts.data)
    loss = DistillLoss(**{**loss.__dict__, "multi_label": bool(manifest.multi_label)})
    train_ids = [c.clip_id for c in manifest.split("train")]
    if len(train_ids) < opts.batch_size:
        raise KwsKdError(f"{opts.data}: {len(train_ids)} train clips, fewer than --batch-size {opts.batch_size}")
    if not manifest.split("validation"):
        raise KwsKdError(f"{opts.data}: the dataset has no validation clips (needed to keep the best weights)")
    clip_seconds = float(opts.clip_seconds or manifest.clip_seconds or 1.0)
    clip_samples = int(round(clip_seconds * manifest.sample_rate))
    student_cfg = make_config(opts.model, {**(opts.student_config or {}), "spec_augment": bool(opts.spec_augment)})
    n_prime = attention_length(opts.model, clip_samples, student_cfg)
    optimizer = opts.optimizer or get_spec(opts.model).default_optimizer

    t_att = t_logits = None
    store_path = None
    if loss.uses_attention or loss.uses_teacher_logits:
        if not opts.teacher_store:
            raise KwsKdError("--kd-lambda > 0 or --logit-kd-beta > 0 needs --teacher-store STORE")
    if opts.teacher_store:
        from kws_kd.store import TeacherStore

        store = TeacherStore.open(opts.teacher_store)
        store_path = str(Path(opts.teacher_store).resolve())
        store.check_manifest(manifest)  # another dataset manifest -> one-line error naming both hashes
        if set(store.labels) != set(manifest.label_names):
            extra = sorted(set(store.labels) ^ set(manifest.label_names))
            raise KwsKdError(f"{opts.teacher_store}: teacher labels differ from the dataset's (e.g. {extra[:5]})")
        missing = [cid for cid in train_ids if cid not in store]
        if missing:
            raise KwsKdError(
                f"{opts.teacher_store}: teacher store is missing {len(missing)} of {len(train_ids)} train clip ids "
                f"(first {min(len(missing), MISSING_SHOWN)}: {', '.join(missing[:MISSING_SHOWN])})"
            )
        if loss.uses_attention:
            t_att = teacher_attention_targets(store, train_ids, n_prime, opts.interpolation,
                                              source=str(opts.teacher_store), first_frame=opts.teacher_first_frame)
        if loss.uses_teacher_logits:
            t_logits = teacher_logit_targets(store, train_ids, manifest.num_labels, source=str(opts.teacher_store))
            # the teacher's logits follow its own label order: put them in the dataset's
            t_logits = t_logits[:, [store.labels.index(lab) for lab in manifest.label_names]]

    init_weights = None
    if opts.init_from:
        from kws_kd.init_from import resolve_init

        init_weights = resolve_init(opts.init_from, opts.model, list(manifest.label_names),
                                    student_config_dict(student_cfg))

    resolved = dict(
        labels=list(manifest.label_names), multi_label=bool(manifest.multi_label), clip_seconds=clip_seconds,
        sample_rate=int(manifest.sample_rate), student_config=student_config_dict(student_cfg),
        data=str(Path(opts.data).resolve()), manifest_hash=manifest.content_hash(), teacher_store=store_path,
        optimizer=optimizer, learning_rates=list(opts.learning_rates or DEFAULT_LEARNING_RATES[optimizer]),
        init_from=str(init_weights) if init_weights else None,
    )
    config = RunConfig(**{**{k: getattr(opts, k) for k in _option_names()}, **resolved})
    return Prepared(config, manifest, loss, train_ids, t_att, t_logits, init_weights)


def _check_out_folder(out: Path, config: RunConfig) -> bool:
    """True when `out` holds a resumable run with the same config; error when it holds another run."""
    if not (out / CONFIG_JSON).is_file():
        if out.exists() and any(out.iterdir()):
            raise KwsKdError(f"{out}: folder exists, is not empty and is not a kws-kd run; choose another --out")
        return False
    a, b = read_config(out).to_dict(), config.to_dict()
    if a != b:
        diff = [k for k in b if a.get(k) != b.get(k)]
        raise KwsKdError(
            f"{out}: holds a run with another config (differs in {', '.join(diff)}); "
            "choose another --out or repeat the original options to resume"
        )
    return True


def train(opts: TrainOptions, *, on_step: Callable[[int], None] | None = None, progress: bool = True,
          evaluate_test: bool = True) -> TrainStats:
    """Train (or resume) the run in `opts.out`. `on_step(step)` is called after every step (tests, benchmarks)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    prep = prepare(opts)
    out = Path(opts.out)
    if not _check_out_folder(out, prep.config):
        write_config(out, prep.config)
    return fit_run(prep, out, on_step=on_step, progress=progress, evaluate_test=evaluate_test)
