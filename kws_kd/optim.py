"""Optimizer, learning-rate schedule and tf.distribute strategy of a run (from its `RunConfig`)."""

from __future__ import annotations


def learning_rate_schedule(config):
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


def make_optimizer(config, schedule):
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
