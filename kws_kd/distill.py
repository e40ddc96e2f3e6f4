"""Temporal knowledge distillation: teacher attention on the student's time axis, and the loss.

Two halves:

* numpy, once per clip before training: the teacher's rollout vector (n frames)
  is linearly interpolated to the student's n' steps and renormalised to a
  distribution (`interpolate_attention`, `teacher_attention_targets`). The result
  is one [N, n'] array keyed by clip id; the input pipeline gathers rows from it,
  so the train step never loops over clips in Python.
* TensorFlow, inside the train step: `DistillLoss` computes, per example,

      L = lambda * KL(a_S || a_T) + (1 - lambda) * L_cls  [+ beta * T^2 * KD_logits]

  with the paper's KL direction D_KL(a_S | a_T) by default (`student_teacher`),
  the reverse as an option (`teacher_student`). L_cls is softmax cross-entropy
  for single-label data and sigmoid binary cross-entropy (mean over classes) for
  multi-label data. The optional logit term is Hinton's KD from the stored
  teacher logits at temperature T. With lambda == 0 no attention term is built
  at all (the attention tensor is not even needed).

TensorFlow is imported lazily so the numpy half is usable without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, get_args

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.rollout import INTERPOLATIONS, interpolate_attention  # noqa: F401 (the one copy; re-exported)
from kws_kd.train_options import FirstFrame, KlDirection

KL_DIRECTIONS = get_args(KlDirection)
#: What to do with the teacher's frame 0 before interpolation (see `fix_first_frame`).
FIRST_FRAME_MODES = get_args(FirstFrame)
#: Probabilities are clipped to this before a log so one zero does not make the loss inf.
EPS = 1e-8


# ---------------------------------------------------------------- numpy half


def fix_first_frame(vector: np.ndarray, mode: str = "neighbour") -> np.ndarray:
    """Replace frame 0 of a teacher rollout vector by frame 1 (`neighbour`), or keep it.

    The teacher classifies from its first context vector c_1, so the rollout row
    we store is c_1's attention over all frames, and frame 0 is c_1 itself. The
    rollout adds the identity at every layer (the residual path), so frame 0
    keeps a self-share (~0.12 of the mass at 8 s with the reference teacher) that
    says nothing about where the keyword is. Copying frame 1 into it removes that
    spike without leaving a hole (a zero would make KL(a_S||a_T) blow up at t=0).
    """
    if mode not in FIRST_FRAME_MODES:
        raise KwsKdError(f"unknown first-frame mode {mode!r}; expected one of {', '.join(FIRST_FRAME_MODES)}")
    v = np.asarray(vector, dtype=np.float64)
    if mode == "keep" or v.size < 2:
        return v
    v = v.copy()
    v[0] = v[1]
    return v


def check_finite(name: str, array: np.ndarray, source: str) -> None:
    """Refuse NaN/inf in a stored vector, naming the store and the clip."""
    if not np.all(np.isfinite(array)):
        raise KwsKdError(f"{source}: {name} contains NaN or inf")


def teacher_attention_targets(
    store,
    clip_ids: Iterable[str],
    length: int,
    method: str = "linear",
    source: str = "teacher store",
    first_frame: str = "neighbour",
) -> np.ndarray:
    """[N, length] float32: each clip's teacher rollout interpolated to the student's n'.

    `first_frame` decides what happens to the teacher's self-frame first
    (`fix_first_frame`).

    Errors (before any training) when a stored vector has NaN/inf or has fewer
    frames than the student's n' (the teacher cannot be upsampled into detail it
    never had).
    """
    clip_ids = list(clip_ids)
    out = np.empty((len(clip_ids), length), np.float32)
    for i, cid in enumerate(clip_ids):
        vec = np.asarray(store.attention(cid), dtype=np.float64)
        check_finite(f"attention of clip {cid!r}", vec, source)
        if vec.size < length:
            raise KwsKdError(
                f"{source}: teacher attention of clip {cid!r} has {vec.size} frames but the student needs "
                f"n'={length}; a student cannot have more time steps than the teacher"
            )
        out[i] = interpolate_attention(fix_first_frame(vec, first_frame), length, method)
    return out


def teacher_logit_targets(store, clip_ids: Iterable[str], num_labels: int, source: str = "teacher store") -> np.ndarray:
    """[N, C] float32 teacher logits for logit KD (NaN/inf and label-count checked)."""
    clip_ids = list(clip_ids)
    out = np.empty((len(clip_ids), num_labels), np.float32)
    for i, cid in enumerate(clip_ids):
        vec = store.logits(cid)
        if vec is None:
            raise KwsKdError(f"{source}: clip {cid!r} has no stored teacher logits (needed for logit KD)")
        vec = np.asarray(vec, dtype=np.float64).reshape(-1)
        check_finite(f"logits of clip {cid!r}", vec, source)
        if vec.size != num_labels:
            raise KwsKdError(f"{source}: logits of clip {cid!r} have {vec.size} classes, the data has {num_labels}")
        out[i] = vec
    return out


# ---------------------------------------------------------------- numpy references (used by tests and docs)


def kl_numpy(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise KL(p || q) with the same clipping as the TF loss."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1.0)
    q = np.clip(np.asarray(q, np.float64), EPS, 1.0)
    return np.sum(np.asarray(p) * (np.log(p) - np.log(q)), axis=-1)


# ---------------------------------------------------------------- TensorFlow half


@dataclass(frozen=True)
class DistillLoss:
    """Per-example loss terms of temporal KD (see the module docstring).

    `__call__` returns a dict of per-example [B] tensors: `cls`, `kd` (attention
    KL, zeros when lambda == 0), `logit_kd` (zeros when beta == 0) and `total`.
    Average them with the global batch size (e.g. `tf.nn.compute_average_loss`)
    so the same code is right under `tf.distribute`.
    """

    kd_lambda: float = 0.0
    kl_direction: str = "student_teacher"
    multi_label: bool = False
    logit_kd_beta: float = 0.0
    logit_kd_temperature: float = 1.0

    def __post_init__(self):
        if not (0.0 <= self.kd_lambda <= 1.0) or math.isnan(self.kd_lambda):
            raise KwsKdError(f"--kd-lambda must be in [0, 1], got {self.kd_lambda}")
        if self.kl_direction not in KL_DIRECTIONS:
            raise KwsKdError(f"--kl-direction must be one of {', '.join(KL_DIRECTIONS)}, got {self.kl_direction!r}")
        if self.logit_kd_beta < 0 or math.isnan(self.logit_kd_beta):
            raise KwsKdError(f"--logit-kd-beta must be >= 0, got {self.logit_kd_beta}")
        if not self.logit_kd_temperature > 0:
            raise KwsKdError(f"--logit-kd-temperature must be > 0, got {self.logit_kd_temperature}")

    @property
    def uses_attention(self) -> bool:
        return self.kd_lambda > 0

    @property
    def uses_teacher_logits(self) -> bool:
        return self.logit_kd_beta > 0

    def __call__(self, logits, labels, attention=None, teacher_attention=None, teacher_logits=None) -> dict:
        import tensorflow as tf

        logits = tf.cast(logits, tf.float32)
        zeros = tf.zeros(tf.shape(logits)[:1], tf.float32)
        cls = classification_loss(logits, labels, self.multi_label)
        total = (1.0 - self.kd_lambda) * cls if self.kd_lambda > 0 else cls
        kd = zeros
        if self.kd_lambda > 0:
            if attention is None or teacher_attention is None:
                raise ValueError("kd_lambda > 0 needs the student attention and the teacher attention")
            kd = attention_kl(attention, teacher_attention, self.kl_direction)
            total = total + self.kd_lambda * kd
        logit_kd = zeros
        if self.logit_kd_beta > 0:
            if teacher_logits is None:
                raise ValueError("logit_kd_beta > 0 needs the teacher logits")
            logit_kd = logit_distillation(logits, teacher_logits, self.logit_kd_temperature, self.multi_label)
            total = total + self.logit_kd_beta * logit_kd
        return {"total": total, "cls": cls, "kd": kd, "logit_kd": logit_kd}


def classification_loss(logits, labels, multi_label: bool):
    """Per-example CE (int labels) or sigmoid BCE averaged over classes (multi-hot labels)."""
    import tensorflow as tf

    if multi_label:
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)
        return tf.reduce_mean(bce, axis=-1)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def attention_kl(student, teacher, direction: str = "student_teacher"):
    """Per-example KL between two attention distributions over time ([B, n'] each)."""
    import tensorflow as tf

    s = tf.clip_by_value(tf.cast(student, tf.float32), EPS, 1.0)
    t = tf.clip_by_value(tf.cast(teacher, tf.float32), EPS, 1.0)
    if direction == "student_teacher":
        p, q = s, t
    elif direction == "teacher_student":
        p, q = t, s
    else:
        raise KwsKdError(f"unknown KL direction {direction!r}; expected one of {', '.join(KL_DIRECTIONS)}")
    return tf.reduce_sum(p * (tf.math.log(p) - tf.math.log(q)), axis=-1)


def logit_distillation(student_logits, teacher_logits, temperature: float, multi_label: bool):
    """Hinton KD, per example, scaled by T^2 so its gradient size does not shrink with T.

    Single-label: KL(softmax(t/T) || softmax(s/T)). Multi-label: the binary KL of
    each class's sigmoid, averaged over classes.
    """
    import tensorflow as tf

    T = float(temperature)
    s = tf.cast(student_logits, tf.float32) / T
    t = tf.cast(teacher_logits, tf.float32) / T
    if multi_label:
        pt = tf.sigmoid(t)
        # BCE(pt, s) - H(pt) == binary KL(pt || sigmoid(s))
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=pt, logits=s)
        ent = tf.nn.sigmoid_cross_entropy_with_logits(labels=pt, logits=t)
        return tf.reduce_mean(bce - ent, axis=-1) * (T * T)
    log_pt = tf.nn.log_softmax(t, axis=-1)
    log_ps = tf.nn.log_softmax(s, axis=-1)
    return tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1) * (T * T)
