"""The body of `kws-kd train`: build the student and its distiller, restore, `fit()` interval by interval, test.

One Keras epoch is one validation interval (`steps_per_epoch = eval_every`).
A resumed run may start inside an interval, and the last interval may be
short, so `fit` is called once per run of equal-length intervals (at most
three calls), each on the stream starting at its first step; the train
function and the optimizer are built once and shared by the calls.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.run import CHECKPOINT_DIR, CONFIG_JSON, TENSORBOARD_DIR, TEST_METRICS, Run, load_run, write_config, \
    write_json


@dataclass
class TrainStats:
    """What one `train` call did (the benchmarks read the timings)."""

    run: Run
    start_step: int
    end_step: int
    step_seconds: float = 0.0  # summed wall time of the steps after the first
    first_step_seconds: float = 0.0  # the first step (graph tracing)


def segments(start: int, steps: int, every: int) -> list[tuple[int, int, int]]:
    """(first Keras epoch, epochs, steps per epoch) for the steps start..steps, validating at multiples of
    `every` and at `steps`."""
    out, position = [], start
    while position < steps:
        epoch = position // every
        end = min((epoch + 1) * every, steps)
        if position % every == 0 and end - position == every:
            full = (steps - position) // every
            out.append((epoch, full, every))
            position += full * every
        else:
            out.append((epoch, 1, end - position))
            position = end
    return out


def fit_run(prep, out: Path, *, on_step: Callable[[int], None] | None, progress: bool, evaluate_test: bool):
    import keras
    import tensorflow as tf

    from kws_kd.callbacks import BestWeights, IntervalHistory, ResumeCheckpoint, StepHook, TrainState
    from kws_kd.distiller import AttentionDistillation, TemporalDistiller
    from kws_kd.evaluate import classification_report, main_metric, predict_keras
    from kws_kd.optim import learning_rate_schedule, lr_at, make_optimizer, make_strategy
    from kws_kd.students.base import student_info
    from kws_kd.students.registry import build_student
    from kws_kd.train_data import FeatureCaches, eval_dataset, train_stream, use_feature_cache

    cfg, loss = prep.config, prep.loss
    keras.utils.set_random_seed(cfg.seed)
    strategy = make_strategy(cfg.distribute)
    out = _worker_folder(strategy, out, cfg)
    schedule = learning_rate_schedule(cfg)
    caching = use_feature_cache(prep)
    with strategy.scope():
        student = build_student(cfg.model, len(cfg.labels), cfg.clip_samples, cfg.student_config, attention=True,
                                fast_graph=cfg.fast_graph, precision=cfg.precision, features_input=caching)
        distiller = TemporalDistiller(student, kd_lambda=loss.kd_lambda,
                                      distillation_loss=AttentionDistillation(loss.kl_direction),
                                      logit_kd_beta=loss.logit_kd_beta, logit_kd_temperature=loss.logit_kd_temperature,
                                      multi_label=loss.multi_label)
        distiller.compile(optimizer=make_optimizer(cfg, schedule), jit_compile=False)
        distiller.build_optimizer()
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    sums_var = tf.Variable(tf.zeros([5], tf.float64), trainable=False)  # loss, cls, kd, logit_kd, steps
    state_module = tf.Module()
    state_module.model = [v.value for v in student.variables]
    state_module.optimizer = [v.value for v in distiller.optimizer.variables]
    ckpt = tf.train.Checkpoint(state=state_module, step=step_var, sums=sums_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / CHECKPOINT_DIR), max_to_keep=2)

    history: list[dict] = []
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        history = [r for r in load_run(out).history() if r["step"] <= int(step_var.numpy())]
    elif prep.init_weights is not None:
        from kws_kd.init_from import load_init

        load_init(student, prep.init_weights)
        if progress:
            print(f"{out}: initialised from {prep.init_weights}")
    start = int(step_var.numpy())
    stats = TrainStats(run=load_run(out), start_step=start, end_step=start)
    if start >= cfg.steps and (out / TEST_METRICS).is_file():
        if progress:
            print(f"{out}: already trained to step {start}; nothing to do")
        return stats

    caches = FeatureCaches(prep, student_info(student).layers["mfcc"], progress) if caching else None
    val_ds = caches.dataset("validation") if caches else eval_dataset(prep.manifest, "validation", 100, cfg.clip_samples)
    plain = distiller.plain

    def validate() -> tuple[float, float]:
        pred = predict_keras(plain, val_ds)
        report = classification_report(pred.logits, pred.targets, cfg.labels, cfg.multi_label)
        cls = loss.__class__(multi_label=cfg.multi_label)(pred.logits, pred.targets)["cls"]
        return main_metric(report), float(np.mean(cls.numpy()))

    state = TrainState(start, sums_var.numpy(), history)
    writer = tf.summary.create_file_writer(str(out / TENSORBOARD_DIR))
    hook = StepHook(state, on_step)
    interval = IntervalHistory(state, out, validate, lambda s: lr_at(schedule, s), cfg.metric_name, writer, progress)
    resume = ResumeCheckpoint(state, student, out, manager, step_var, sums_var)
    callbacks = [hook, keras.callbacks.TerminateOnNaN(), interval, BestWeights(student, out, interval.best, state),
                 resume, keras.callbacks.TensorBoard(str(out / TENSORBOARD_DIR), update_freq="epoch")]
    if progress and start:
        print(f"{out}: resuming at step {start} of {cfg.steps}")
    verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
    restore_sigterm = _sigterm_as_interrupt()
    try:
        for epoch, epochs, length in segments(start, cfg.steps, cfg.eval_every):
            stream = train_stream(prep, state.step, caches.get("train") if caches else None)
            distiller.fit(stream, initial_epoch=epoch, epochs=epoch + epochs, steps_per_epoch=length,
                          callbacks=callbacks, verbose=verbose, shuffle=False)  # the stream is ordered
            if state.failed_step is not None:
                last = manager.latest_checkpoint
                raise KwsKdError(
                    f"{out}: loss became {state.failed_value} at step {state.failed_step}; training stopped. "
                    + (f"Last good checkpoint kept: {last}" if last else "No checkpoint was written yet."))
    except KeyboardInterrupt:
        if state.step > start:
            resume.save_now()
            print(f"\n{out}: interrupted at step {state.step}; checkpoint saved, rerun the same command to resume")
        raise KeyboardInterrupt from None
    finally:
        restore_sigterm()
        writer.close()
    stats.end_step, stats.step_seconds, stats.first_step_seconds = state.step, hook.step_seconds, hook.first_step_seconds

    if evaluate_test and prep.manifest.split("test"):
        _evaluate_test(prep, out, student, caches, history, progress)
    stats.run = load_run(out)
    return stats


def _evaluate_test(prep, out: Path, student, caches, history: list[dict], progress: bool) -> None:
    """The best weights on the test split -> test_metrics.json (with the attention mass in the keyword span)."""
    from kws_kd.evaluate import classification_report, main_metric, predict_keras, span_mass
    from kws_kd.run import BEST_WEIGHTS
    from kws_kd.train_data import eval_dataset

    cfg = prep.config
    student.load_weights(str(out / BEST_WEIGHTS))
    test_ds = caches.dataset("test") if caches else eval_dataset(prep.manifest, "test", 100, cfg.clip_samples)
    pred = predict_keras(student, test_ds, with_attention=True, progress="test" if progress else None)
    report = classification_report(pred.logits, pred.targets, cfg.labels, cfg.multi_label)
    report["split"] = "test"
    report["best_step"] = max((r for r in history if r.get("best")), key=lambda r: r["step"], default={}).get("step")
    if np.any(pred.spans[:, 0] >= 0):
        report["attention_in_span"] = span_mass(pred.attention, pred.spans, cfg.clip_samples / cfg.sample_rate)
    write_json(out / TEST_METRICS, report)
    if progress:
        print(f"test {report['metric']}: {main_metric(report):.4f} ({report['clips']} clips) -> {out / TEST_METRICS}")


def _worker_folder(strategy, out: Path, cfg) -> Path:
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
