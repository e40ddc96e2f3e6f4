"""`kws-kd train`: the distillation training loop (custom train step, tf.distribute, resumable).

Why a custom step instead of `model.fit`: with lambda == 0 the step calls the
stripped, logits-only student, so no attention branch and no attention loss is
computed at all -- the vanilla baseline exactly; with lambda > 0 the training
model returns [logits, a_S] and `kws_kd.distill.DistillLoss` adds the KL term.

Everything that can be wrong with the inputs is checked before the first step
(`prepare`): lambda range, a store made for another manifest, train clips
missing from the store, a student whose n' exceeds the teacher's frame count,
NaN/inf in stored vectors. Teacher attention is interpolated to n' once per clip
into an [N, n'] array; the input pipeline gathers rows by clip id in-graph.

Resuming: data order is a pure function of (seed, step): epoch e is the
pipeline's permutation for (seed, e), and a resumed run skips the batches of
the current epoch already consumed (the pipeline skips indices before reading
audio, so this is cheap). The checkpoint (`RUN/checkpoint`)
holds every model variable (weights and random-generator states), the optimizer
variables, the step and the running loss sums of the current validation
interval. It is written at every validation and when the run is interrupted
(Ctrl-C / SIGTERM), so a resumed run continues at the same step with the same
batches and produces the same metrics history as an unbroken run. A NaN/inf
loss stops the run with an error and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kws_kd.distill import FIRST_FRAME_MODES, INTERPOLATIONS, DistillLoss, teacher_attention_targets, teacher_logit_targets
from kws_kd.errors import KwsKdError
from kws_kd.feature_cache import FEATURE_CACHE_MODES
from kws_kd.graph_options import PRECISIONS
from kws_kd.run import (
    BEST_WEIGHTS,
    CHECKPOINT_DIR,
    CONFIG_JSON,
    LAST_WEIGHTS,
    TENSORBOARD_DIR,
    TEST_METRICS,
    Run,
    RunConfig,
    load_run,
    read_config,
    student_config_dict,
    write_config,
    write_history,
    write_json,
)

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("piecewise", "exponential")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
DEFAULT_LEARNING_RATES = {"adam": [0.001, 0.0005, 0.0001, 0.00002], "sgd": [0.1, 0.01]}
#: kws_streaming trains TC-ResNet with SGD + momentum, the others with Adam.
DEFAULT_OPTIMIZER = {"tc_resnet": "sgd"}
MISSING_SHOWN = 5


@dataclass
class TrainOptions:
    """What `kws-kd train` was asked for; `prepare` resolves it into a `RunConfig`."""

    model: str
    data: str
    out: str
    teacher_store: str | None = None
    kd_lambda: float = 0.0
    kl_direction: str = "student_teacher"
    interpolation: str = "linear"
    teacher_first_frame: str = "neighbour"
    logit_kd_beta: float = 0.0
    logit_kd_temperature: float = 1.0
    steps: int = 20000
    batch_size: int = 100
    eval_every: int = 400
    clip_seconds: float | None = None
    seed: int = 0
    optimizer: str | None = None
    lr_schedule: str = "piecewise"
    learning_rates: list[float] | None = None
    spec_augment: bool = True
    student_config: dict = field(default_factory=dict)
    distribute: str = "none"
    init_from: str | None = None
    precision: str = "float32"
    fast_graph: bool = True
    feature_cache: str = "auto"


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


# ---------------------------------------------------------------- checks and config


def _check_options(opts: TrainOptions) -> DistillLoss:
    loss = DistillLoss(
        kd_lambda=float(opts.kd_lambda),
        kl_direction=opts.kl_direction,
        logit_kd_beta=float(opts.logit_kd_beta),
        logit_kd_temperature=float(opts.logit_kd_temperature),
    )
    for name, value in (("--steps", opts.steps), ("--batch-size", opts.batch_size), ("--eval-every", opts.eval_every)):
        if int(value) < 1:
            raise KwsKdError(f"{name} must be >= 1, got {value}")
    if opts.optimizer is not None and opts.optimizer not in OPTIMIZERS:
        raise KwsKdError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {opts.optimizer!r}")
    if opts.lr_schedule not in LR_SCHEDULES:
        raise KwsKdError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {opts.lr_schedule!r}")
    if opts.distribute not in DISTRIBUTE:
        raise KwsKdError(f"--distribute must be one of {', '.join(DISTRIBUTE)}, got {opts.distribute!r}")
    if opts.interpolation not in INTERPOLATIONS:
        raise KwsKdError(f"--interpolation must be one of {', '.join(INTERPOLATIONS)}, got {opts.interpolation!r}")
    if opts.teacher_first_frame not in FIRST_FRAME_MODES:
        raise KwsKdError(f"--teacher-first-frame must be one of {', '.join(FIRST_FRAME_MODES)}, "
                         f"got {opts.teacher_first_frame!r}")
    if opts.learning_rates is not None and (not opts.learning_rates or any(not lr > 0 for lr in opts.learning_rates)):
        raise KwsKdError(f"--learning-rates must be positive numbers, got {opts.learning_rates}")
    if opts.clip_seconds is not None and not opts.clip_seconds > 0:
        raise KwsKdError(f"--clip-seconds must be > 0, got {opts.clip_seconds}")
    if opts.precision not in PRECISIONS:
        raise KwsKdError(f"--precision must be one of {', '.join(PRECISIONS)}, got {opts.precision!r}")
    if opts.feature_cache not in FEATURE_CACHE_MODES:
        raise KwsKdError(f"--feature-cache must be one of {', '.join(FEATURE_CACHE_MODES)}, got {opts.feature_cache!r}")
    return loss


def prepare(opts: TrainOptions) -> Prepared:
    """Check every input and resolve the run config; nothing is written, no model is built."""
    from kws_kd.data.load import load_dataset
    from kws_kd.students.registry import attention_length, get_spec, make_config

    loss = _check_options(opts)
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
    optimizer = opts.optimizer or DEFAULT_OPTIMIZER.get(opts.model, "adam")

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

    config = RunConfig(
        model=opts.model,
        labels=list(manifest.label_names),
        multi_label=bool(manifest.multi_label),
        clip_seconds=clip_seconds,
        sample_rate=int(manifest.sample_rate),
        student_config=student_config_dict(student_cfg),
        data=str(Path(opts.data).resolve()),
        manifest_hash=manifest.content_hash(),
        teacher_store=store_path,
        kd_lambda=float(opts.kd_lambda),
        kl_direction=opts.kl_direction,
        interpolation=opts.interpolation,
        teacher_first_frame=opts.teacher_first_frame,
        logit_kd_beta=float(opts.logit_kd_beta),
        logit_kd_temperature=float(opts.logit_kd_temperature),
        steps=int(opts.steps),
        batch_size=int(opts.batch_size),
        eval_every=int(opts.eval_every),
        seed=int(opts.seed),
        optimizer=optimizer,
        lr_schedule=opts.lr_schedule,
        learning_rates=list(opts.learning_rates or DEFAULT_LEARNING_RATES[optimizer]),
        spec_augment=bool(opts.spec_augment),
        distribute=opts.distribute,
        init_from=str(init_weights) if init_weights else None,
        precision=opts.precision,
        fast_graph=bool(opts.fast_graph),
        feature_cache=opts.feature_cache,
    )
    return Prepared(config, manifest, loss, train_ids, t_att, t_logits, init_weights)


def _check_out_folder(out: Path, config: RunConfig) -> bool:
    """True when `out` holds a resumable run with the same config; error when it holds another run."""
    if not (out / CONFIG_JSON).is_file():
        if out.exists() and any(out.iterdir()):
            raise KwsKdError(f"{out}: folder exists, is not empty and is not a kws-kd run; choose another --out")
        return False
    old = read_config(out)
    if old != config:
        a, b = old.__dict__, config.__dict__
        diff = [k for k in b if a.get(k) != b.get(k)]
        raise KwsKdError(
            f"{out}: holds a run with another config (differs in {', '.join(diff)}); "
            "choose another --out or repeat the original options to resume"
        )
    return True


# ---------------------------------------------------------------- data


def _subset(manifest, split: str, max_clips: int | None):
    """The manifest restricted to `split` (and its first `max_clips` clips)."""
    from dataclasses import replace

    clips = manifest.split(split)
    if max_clips is not None:
        clips = clips[:max_clips]
    return replace(manifest, clips=clips)


def _pipeline_dataset(
    manifest, split: str, batch_size: int, clip_samples: int, *, shuffle: bool, seed: int, drop_remainder: bool,
    epoch: int = 0, skip_batches: int = 0,
):
    """One pass over `split` through the shared tf.data pipeline (`kws_kd.data.pipeline`)."""
    from kws_kd.data.pipeline import make_dataset

    return make_dataset(
        manifest, split, batch_size, clip_samples=clip_samples, shuffle=shuffle, seed=seed, epoch=epoch,
        skip_batches=skip_batches, drop_remainder=drop_remainder,
    )


def eval_dataset(manifest, split: str, batch_size: int, clip_samples: int, *, max_clips: int | None = None):
    """Every clip of `split` in manifest order (the data path of validation, eval and attention plots)."""
    sub = _subset(manifest, split, max_clips)
    if not sub.clips:
        raise KwsKdError(f"{manifest.root}: split {split!r} has no clips")
    return _pipeline_dataset(sub, split, batch_size, clip_samples, shuffle=False, seed=0, drop_remainder=False)


def _epoch_dataset(prep: Prepared, epoch: int, skip: int = 0, cache=None):
    """Training batches of epoch `epoch` (the pipeline's permutation for (seed, epoch)), first `skip` left out.

    Batches are dicts of the model input (`audio`, or `features` from a
    `FeatureCache` of the train split), label and, when distilling,
    `teacher_attention` and `teacher_logits`: rows of the [N, n'] / [N, C]
    arrays, which follow the train split's order like the cache does. Batch k
    of the run is the same whether or not the run was resumed, and whether or
    not features are cached.
    """
    import tensorflow as tf

    cfg = prep.config
    per_epoch = len(prep.train_ids) // cfg.batch_size
    targets = {k: v for k, v in (("teacher_attention", prep.teacher_attention),
                                 ("teacher_logits", prep.teacher_logits)) if v is not None}
    if cache is not None:
        from kws_kd.data.pipeline import epoch_order
        from kws_kd.feature_cache import cached_dataset

        order = epoch_order(len(cache), cfg.seed, epoch)
        ds = cached_dataset(cache, cfg.batch_size, order=order, skip_batches=skip, drop_remainder=True, extra=targets)
        keep = ("features", "label", *targets)
        return ds.take(per_epoch - skip).map(lambda batch: {k: batch[k] for k in keep})

    consts = {k: tf.constant(v) for k, v in targets.items()}
    table = None
    if consts:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(prep.train_ids), tf.range(len(prep.train_ids), dtype=tf.int32)), -1
        )

    def join(batch):
        out = {"audio": batch["audio"], "label": batch["label"]}
        if table is not None:
            row = table.lookup(batch["clip_id"])
            out.update({k: tf.gather(v, row) for k, v in consts.items()})
        return out

    ds = _pipeline_dataset(
        prep.manifest, "train", cfg.batch_size, cfg.clip_samples, shuffle=True, seed=cfg.seed, epoch=epoch,
        skip_batches=skip, drop_remainder=True,
    )
    return ds.take(per_epoch - skip).map(join)


# ---------------------------------------------------------------- optimizer, strategy


def learning_rate_schedule(config: RunConfig):
    """kws_streaming schedules over the run's steps: piecewise constant (equal segments) or exponential first->last."""
    import keras

    lrs = [float(x) for x in config.learning_rates]
    if config.lr_schedule == "exponential" and len(lrs) > 1:
        return keras.optimizers.schedules.ExponentialDecay(lrs[0], decay_steps=config.steps, decay_rate=lrs[-1] / lrs[0])
    if len(lrs) == 1:
        return lrs[0]
    bounds = [int(round(config.steps * i / len(lrs))) for i in range(1, len(lrs))]
    return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, lrs)


def lr_at(schedule, step: int) -> float:
    return float(schedule(step)) if callable(schedule) else float(schedule)


def make_optimizer(config: RunConfig, schedule):
    import keras

    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    return keras.optimizers.Adam(learning_rate=schedule, epsilon=1e-8)


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _save_weights_atomic(model, dest: Path) -> None:
    """Keras needs a `.weights.h5` name: save under a hidden one, then rename."""
    tmp = dest.with_name(f".{dest.name[: -len('.weights.h5')]}.tmp.weights.h5")
    model.save_weights(str(tmp))
    os.replace(tmp, dest)


# ---------------------------------------------------------------- the loop


@dataclass
class TrainStats:
    """What one `train` call did (the benchmark reads the timings)."""

    run: Run
    start_step: int
    end_step: int
    step_seconds: float = 0.0
    data_wait_seconds: float = 0.0
    first_step_seconds: float = 0.0


def train(
    opts: TrainOptions,
    *,
    on_step: Callable[[int], None] | None = None,
    progress: bool = True,
    evaluate_test: bool = True,
) -> TrainStats:
    """Train (or resume) the run in `opts.out`. `on_step(step)` is called after every step (tests, benchmarks)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    prep = prepare(opts)
    out = Path(opts.out)
    resuming = _check_out_folder(out, prep.config)
    if not resuming:
        write_config(out, prep.config)
    return _train_loop(prep, out, on_step=on_step, progress=progress, evaluate_test=evaluate_test)


def _train_loop(prep: Prepared, out: Path, *, on_step, progress: bool, evaluate_test: bool) -> TrainStats:
    import keras
    import tensorflow as tf

    from kws_kd.evaluate import classification_report, main_metric, predict_keras
    from kws_kd.run import strip_model
    from kws_kd.students.registry import build_student

    cfg, loss = prep.config, prep.loss
    keras.utils.set_random_seed(cfg.seed)
    strategy = make_strategy(cfg.distribute)
    out = _worker_folder(strategy, out, cfg)
    schedule = learning_rate_schedule(cfg)
    caching = _use_feature_cache(prep)
    with strategy.scope():
        model = build_student(cfg.model, len(cfg.labels), cfg.clip_samples, cfg.student_config, attention=True,
                              fast_graph=cfg.fast_graph, precision=cfg.precision, features_input=caching)
        plain = strip_model(model)
        step_model = model if loss.uses_attention else plain
        train_vars = step_model.trainable_variables
        optimizer = make_optimizer(cfg, schedule)
        optimizer.build(train_vars)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    sums_var = tf.Variable(tf.zeros([5], tf.float64), trainable=False)  # total, cls, kd, logit_kd, steps
    state = tf.Module()
    state.model = [v.value for v in model.variables]
    state.optimizer = [v.value for v in optimizer.variables]
    ckpt = tf.train.Checkpoint(state=state, step=step_var, sums=sums_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / CHECKPOINT_DIR), max_to_keep=2)

    history: list[dict] = []
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        history = [r for r in load_run(out).history() if r["step"] <= int(step_var.numpy())]
    elif prep.init_weights is not None:
        from kws_kd.init_from import load_init

        load_init(model, prep.init_weights)
        if progress:
            print(f"{out}: initialised from {prep.init_weights}")
    start_step = int(step_var.numpy())
    stats = TrainStats(run=load_run(out), start_step=start_step, end_step=start_step)
    if start_step >= cfg.steps and (out / TEST_METRICS).is_file():
        if progress:
            print(f"{out}: already trained to step {start_step}; nothing to do")
        return stats

    global_batch = cfg.batch_size
    distill = loss.uses_attention
    use_logits = loss.uses_teacher_logits
    input_key = "features" if caching else "audio"
    caches = _FeatureCaches(prep, model, progress) if caching else None

    def replica_step(batch):
        with tf.GradientTape() as tape:
            if distill:
                logits, att = step_model(batch[input_key], training=True)
            else:
                logits, att = step_model(batch[input_key], training=True), None
            terms = loss(
                logits,
                batch["label"],
                att,
                batch.get("teacher_attention"),
                batch.get("teacher_logits") if use_logits else None,
            )
            means = {k: tf.nn.compute_average_loss(v, global_batch_size=global_batch) for k, v in terms.items()}
        grads = tape.gradient(means["total"], train_vars)
        optimizer.apply_gradients(zip(grads, train_vars))
        return means

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    val_ds = caches.dataset("validation") if caches else eval_dataset(prep.manifest, "validation", 100, cfg.clip_samples)

    def validate() -> tuple[float, float]:
        pred = predict_keras(plain, val_ds)
        report = classification_report(pred.logits, pred.targets, cfg.labels, cfg.multi_label)
        cls = loss.__class__(multi_label=cfg.multi_label)(pred.logits, pred.targets)["cls"]
        return main_metric(report), float(np.mean(cls.numpy()))

    writer = tf.summary.create_file_writer(str(out / TENSORBOARD_DIR))
    best = max((r["val_metric"] for r in history if r.get("val_metric") is not None), default=-math.inf)
    sums = sums_var.numpy().copy()
    # A redrawn bar only on a terminal; in a log file the per-validation lines below are the progress.
    bar = keras.utils.Progbar(cfg.steps, stateful_metrics=["cls", "kd", "total", "lr"],
                              verbose=1 if progress and sys.stdout.isatty() else 0)
    if progress and start_step:
        print(f"{out}: resuming at step {start_step} of {cfg.steps}")

    def save_checkpoint(step: int) -> None:
        step_var.assign(step)
        sums_var.assign(sums)
        manager.save(checkpoint_number=step)
        nonlocal saved_step
        saved_step = step

    restore_sigterm = _sigterm_as_interrupt()
    batches = _distributed_batches(strategy, prep, start_step, caches.get("train") if caches else None)
    saved_step = start_step if manager.latest_checkpoint else -1
    step = start_step
    t_begin = time.perf_counter()
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            batch = next(batches)
            t1 = time.perf_counter()
            values = {k: float(v) for k, v in train_step(batch).items()}
            t2 = time.perf_counter()
            if step == start_step:
                stats.first_step_seconds = t2 - t0
            else:
                stats.data_wait_seconds += t1 - t0
                stats.step_seconds += t2 - t1
            if not math.isfinite(values["total"]):
                last = manager.latest_checkpoint
                raise KwsKdError(
                    f"{out}: loss became {values['total']} at step {step + 1}; training stopped. "
                    + (f"Last good checkpoint kept: {last}" if last else "No checkpoint was written yet.")
                )
            step += 1
            sums += [values["total"], values["cls"], values["kd"], values["logit_kd"], 1.0]
            lr = lr_at(schedule, step - 1)
            bar.update(step, [("total", values["total"]), ("cls", values["cls"]), ("kd", values["kd"]), ("lr", lr)])
            if step % 10 == 0:
                with writer.as_default(step=step):
                    tf.summary.scalar("train/total_step", values["total"])
            if step % cfg.eval_every == 0 or step == cfg.steps:
                val_metric, val_loss = validate()
                n = max(sums[4], 1.0)
                row = {
                    "step": step,
                    "lr": lr,
                    "train_loss": sums[0] / n,
                    "train_cls": sums[1] / n,
                    "train_kd": sums[2] / n,
                    "train_logit_kd": sums[3] / n,
                    "val_loss": val_loss,
                    "val_metric": val_metric,
                    "best": val_metric > best,
                    "seconds": round(time.perf_counter() - t_begin, 3),
                }
                history.append(row)
                with writer.as_default(step=step):
                    for k in ("train_loss", "train_cls", "train_kd", "train_logit_kd", "val_loss", "val_metric", "lr"):
                        tf.summary.scalar(k.replace("_", "/", 1), row[k])
                writer.flush()
                if row["best"]:
                    best = val_metric
                    _save_weights_atomic(model, out / BEST_WEIGHTS)
                _save_weights_atomic(model, out / LAST_WEIGHTS)
                sums = np.zeros(5)
                write_history(out, history)
                save_checkpoint(step)
                if progress:
                    print(f"\nstep {step}/{cfg.steps}: val {cfg.metric_name} {val_metric:.4f} (best {best:.4f}), "
                          f"val loss {val_loss:.4f}, {row['seconds']:.0f} s", flush=True)
            if on_step is not None:
                on_step(step)
    except KeyboardInterrupt:
        if step > start_step and step != saved_step:
            save_checkpoint(step)
            print(f"\n{out}: interrupted at step {step}; checkpoint saved, rerun the same command to resume")
        raise KeyboardInterrupt from None
    finally:
        restore_sigterm()
        writer.close()
    stats.end_step = step

    if evaluate_test and prep.manifest.split("test"):
        model.load_weights(str(out / BEST_WEIGHTS))
        test_ds = caches.dataset("test") if caches else eval_dataset(prep.manifest, "test", 100, cfg.clip_samples)
        pred = predict_keras(model, test_ds, with_attention=True, progress="test" if progress else None)
        report = classification_report(pred.logits, pred.targets, cfg.labels, cfg.multi_label)
        report["split"] = "test"
        report["best_step"] = max((r for r in history if r.get("best")), key=lambda r: r["step"], default={}).get("step")
        if np.any(pred.spans[:, 0] >= 0):
            from kws_kd.evaluate import span_mass

            report["attention_in_span"] = span_mass(pred.attention, pred.spans, cfg.clip_samples / cfg.sample_rate)
        write_json(out / TEST_METRICS, report)
        if progress:
            print(f"test {report['metric']}: {main_metric(report):.4f} ({report['clips']} clips) -> {out / TEST_METRICS}")
    stats.run = load_run(out)
    return stats


def _use_feature_cache(prep: Prepared) -> bool:
    """Whether this run trains from cached MFCCs (`kws_kd.feature_cache`): its mode against the memory needed."""
    from kws_kd.feature_cache import use_cache
    from kws_kd.features import num_frames
    from kws_kd.students.registry import make_config

    cfg = prep.config
    front = make_config(cfg.model, cfg.student_config).front_end
    clips = sum(len(prep.manifest.split(s)) for s in ("train", "validation", "test"))
    return use_cache(cfg.feature_cache, clips, num_frames(cfg.clip_samples, front), front.num_coeffs)


class _FeatureCaches:
    """Per-split feature caches of one run, built on first use with the student's own front end."""

    def __init__(self, prep: Prepared, model, progress: bool):
        from kws_kd.students.base import student_info

        self.prep, self.progress = prep, progress
        self.front_end = student_info(model).layers["mfcc"]
        self.caches: dict = {}

    def get(self, split: str):
        from kws_kd.feature_cache import build_cache

        if split not in self.caches:
            cfg = self.prep.config
            audio = eval_dataset(self.prep.manifest, split, 100, cfg.clip_samples)
            self.caches[split] = build_cache(audio, self.front_end, progress=f"MFCC {split}" if self.progress else None)
            if split == "train" and list(self.caches[split].clip_ids.astype(str)) != self.prep.train_ids:
                raise KwsKdError(f"{cfg.data}: train clips came back in another order than the manifest's")
        return self.caches[split]

    def dataset(self, split: str, batch_size: int = 100):
        from kws_kd.feature_cache import cached_dataset

        return cached_dataset(self.get(split), batch_size)


def _distributed_batches(strategy, prep: Prepared, start_step: int, cache=None):
    """Per-epoch datasets of `train_batches`, each distributed over the strategy's replicas."""
    import tensorflow as tf

    cfg = prep.config
    per_epoch = len(prep.train_ids) // cfg.batch_size
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        ds = _epoch_dataset(prep, epoch, skip, cache)
        yield from strategy.experimental_distribute_dataset(ds.prefetch(tf.data.AUTOTUNE))
        epoch, skip = epoch + 1, 0


def _worker_folder(strategy, out: Path, cfg: RunConfig) -> Path:
    """Multi-worker: only the chief writes RUN; other workers write their (identical) state to RUN/.worker-<id>."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    has_chief = bool(resolver is not None and "chief" in resolver.cluster_spec().as_dict())
    if task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and not has_chief):
        return out
    folder = out / f".worker-{task_type}-{task_id}"
    if not (folder / CONFIG_JSON).is_file():
        write_config(folder, cfg)
    return folder


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt (checkpoint on kill) while training in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)
