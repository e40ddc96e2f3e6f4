"""The temporal KD loss and the teacher-attention interpolation, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from kws_kd.distill import (
    DistillLoss,
    interpolate_attention,
    kl_numpy,
    teacher_attention_targets,
    teacher_logit_targets,
)
from kws_kd.errors import KwsKdError


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def fixed():
    rng = np.random.default_rng(7)
    B, C, n = 5, 4, 9
    return {
        "logits": rng.normal(size=(B, C)).astype(np.float32) * 2,
        "labels": rng.integers(0, C, size=B).astype(np.int32),
        "multi": (rng.random((B, C)) < 0.4).astype(np.float32),
        "a_s": _softmax(rng.normal(size=(B, n))).astype(np.float32),
        "a_t": _softmax(rng.normal(size=(B, n)) * 1.5).astype(np.float32),
        "t_logits": rng.normal(size=(B, C)).astype(np.float32) * 3,
    }


def _ce_numpy(logits, labels):
    return -_log_softmax(logits.astype(np.float64))[np.arange(len(labels)), labels]


def _bce_numpy(logits, y):
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)


@pytest.mark.parametrize("lam", [0.0, 0.1, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("direction", ["student_teacher", "teacher_student"])
def test_loss_equals_numpy_single_label(fixed, lam, direction):
    loss = DistillLoss(kd_lambda=lam, kl_direction=direction)
    out = loss(fixed["logits"], fixed["labels"], fixed["a_s"], fixed["a_t"])
    ce = _ce_numpy(fixed["logits"], fixed["labels"])
    # independent KL: explicit sum of p*log(p/q)
    p, q = (fixed["a_s"], fixed["a_t"]) if direction == "student_teacher" else (fixed["a_t"], fixed["a_s"])
    kl = np.sum(p.astype(np.float64) * np.log(p.astype(np.float64) / q.astype(np.float64)), axis=-1)
    np.testing.assert_allclose(out["cls"].numpy(), ce, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["total"].numpy(), lam * kl + (1 - lam) * ce, rtol=1e-5, atol=1e-6)
    if lam > 0:
        np.testing.assert_allclose(out["kd"].numpy(), kl, rtol=1e-5, atol=1e-6)
        assert np.all(kl > 0)


def test_kl_directions_differ(fixed):
    a = DistillLoss(kd_lambda=1.0, kl_direction="student_teacher")(fixed["logits"], fixed["labels"], fixed["a_s"], fixed["a_t"])
    b = DistillLoss(kd_lambda=1.0, kl_direction="teacher_student")(fixed["logits"], fixed["labels"], fixed["a_s"], fixed["a_t"])
    assert not np.allclose(a["kd"].numpy(), b["kd"].numpy())
    np.testing.assert_allclose(a["kd"].numpy(), kl_numpy(fixed["a_s"], fixed["a_t"]), rtol=1e-5)


def test_loss_bce_multi_label(fixed):
    lam = 0.25
    out = DistillLoss(kd_lambda=lam, multi_label=True)(fixed["logits"], fixed["multi"], fixed["a_s"], fixed["a_t"])
    bce = _bce_numpy(fixed["logits"], fixed["multi"])
    kl = kl_numpy(fixed["a_s"], fixed["a_t"])
    np.testing.assert_allclose(out["cls"].numpy(), bce, rtol=1e-5)
    np.testing.assert_allclose(out["total"].numpy(), lam * kl + (1 - lam) * bce, rtol=1e-5)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_logit_kd_single_label(fixed, T):
    beta, lam = 0.5, 0.25
    out = DistillLoss(kd_lambda=lam, logit_kd_beta=beta, logit_kd_temperature=T)(
        fixed["logits"], fixed["labels"], fixed["a_s"], fixed["a_t"], fixed["t_logits"]
    )
    pt = _softmax(fixed["t_logits"].astype(np.float64) / T)
    ps = _softmax(fixed["logits"].astype(np.float64) / T)
    hinton = T * T * np.sum(pt * np.log(pt / ps), axis=-1)
    np.testing.assert_allclose(out["logit_kd"].numpy(), hinton, rtol=1e-4, atol=1e-6)
    ce = _ce_numpy(fixed["logits"], fixed["labels"])
    kl = kl_numpy(fixed["a_s"], fixed["a_t"])
    np.testing.assert_allclose(out["total"].numpy(), lam * kl + (1 - lam) * ce + beta * hinton, rtol=1e-4)


def test_logit_kd_alone_multi_label(fixed):
    T, beta = 2.0, 1.0
    out = DistillLoss(kd_lambda=0.0, multi_label=True, logit_kd_beta=beta, logit_kd_temperature=T)(
        fixed["logits"], fixed["multi"], None, None, fixed["t_logits"]
    )
    pt = 1 / (1 + np.exp(-fixed["t_logits"].astype(np.float64) / T))
    ps = 1 / (1 + np.exp(-fixed["logits"].astype(np.float64) / T))
    binkl = np.mean(pt * np.log(pt / ps) + (1 - pt) * np.log((1 - pt) / (1 - ps)), axis=-1) * T * T
    np.testing.assert_allclose(out["logit_kd"].numpy(), binkl, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["total"].numpy(), _bce_numpy(fixed["logits"], fixed["multi"]) + binkl, rtol=1e-4)
    assert np.all(out["kd"].numpy() == 0)


def test_lambda_zero_needs_no_attention(fixed):
    out = DistillLoss(kd_lambda=0.0)(fixed["logits"], fixed["labels"])  # no attention given at all
    np.testing.assert_allclose(out["total"].numpy(), _ce_numpy(fixed["logits"], fixed["labels"]), rtol=1e-5)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_lambda_out_of_range(bad):
    with pytest.raises(KwsKdError, match="kd-lambda"):
        DistillLoss(kd_lambda=bad)


def test_bad_direction():
    with pytest.raises(KwsKdError, match="kl-direction"):
        DistillLoss(kd_lambda=0.5, kl_direction="sideways")


def _toy_student(n_steps=6, num_labels=3):
    """A stand-in student with [logits, attention] outputs and a separate attention branch."""
    import keras

    inp = keras.Input((n_steps, 4))
    h = keras.layers.Dense(8, activation="tanh", name="encoder")(inp)
    logits = keras.layers.Dense(num_labels, name="head")(keras.layers.GlobalAveragePooling1D()(h))
    score = keras.layers.Dense(1, name="branch")(h)
    att = keras.layers.Softmax(axis=1)(keras.layers.Reshape((n_steps,))(score))
    train_model = keras.Model(inp, [logits, att])
    plain = keras.Model(inp, logits)  # shares every layer but the branch
    return train_model, plain


def test_lambda_zero_gradients_equal_plain_student():
    import tensorflow as tf

    import keras

    keras.utils.set_random_seed(3)
    train_model, plain = _toy_student()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1], np.int32)
    a_t = _softmax(rng.normal(size=(4, 6))).astype(np.float32)
    loss = DistillLoss(kd_lambda=0.0)
    with tf.GradientTape() as tape:
        logits, att = train_model(x, training=True)
        kd_total = tf.reduce_mean(loss(logits, y, att, a_t)["total"])
    g_kd = tape.gradient(kd_total, train_model.trainable_variables)
    with tf.GradientTape() as tape:
        plain_total = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=plain(x, training=True)))
    g_plain = dict(zip([v.path for v in plain.trainable_variables], tape.gradient(plain_total, plain.trainable_variables)))
    assert float(kd_total) == pytest.approx(float(plain_total), rel=1e-6)
    for v, g in zip(train_model.trainable_variables, g_kd):
        if v.path.startswith("branch"):
            assert g is None  # no attention term: the branch gets no gradient at all
        else:
            np.testing.assert_array_equal(g.numpy(), g_plain[v.path].numpy())
    # and with lambda > 0 the gradients do change (the test above could fail)
    with tf.GradientTape() as tape:
        logits, att = train_model(x, training=True)
        t = tf.reduce_mean(DistillLoss(kd_lambda=0.5)(logits, y, att, a_t)["total"])
    g_half = tape.gradient(t, train_model.trainable_variables)
    assert any(g is not None and v.path.startswith("branch") for v, g in zip(train_model.trainable_variables, g_half))


# ---------------------------------------------------------------- interpolation


@pytest.mark.parametrize("method", ["linear", "area"])
@pytest.mark.parametrize("n,m", [(49, 49), (49, 25), (399, 399), (399, 100), (399, 50), (20, 60)])
def test_interpolation_keeps_one_hot_peak_and_sums_to_one(method, n, m):
    for k in (1, n // 3, n // 2, n - 2):
        v = np.zeros(n)
        v[k] = 1.0
        out = interpolate_attention(v, m, method)
        assert out.shape == (m,)
        assert out.sum() == pytest.approx(1.0, abs=1e-6)
        assert np.all(out >= 0)
        # relative position of the peak (bin centres) is kept to within one output bin
        peak = int(np.argmax(out))
        assert abs((peak + 0.5) / m - (k + 0.5) / n) <= 1.0 / m + 1e-9, (k, peak)


def test_interpolation_identity_and_linear_values():
    rng = np.random.default_rng(1)
    v = rng.random(30)
    v /= v.sum()
    np.testing.assert_allclose(interpolate_attention(v, 30), v, rtol=1e-6)
    # upsampling by 2 with bin-centre sampling: interior outputs are 0.75/0.25 blends of neighbours
    up = interpolate_attention(v, 60).astype(np.float64)
    expected = np.interp((np.arange(60) + 0.5) / 2 - 0.5, np.arange(30), v)
    expected = np.clip(expected, 0, None) / np.clip(expected, 0, None).sum()
    np.testing.assert_allclose(up, expected, rtol=1e-5)
    assert up[3] / up[4] == pytest.approx((0.75 * v[1] + 0.25 * v[2]) / (0.25 * v[1] + 0.75 * v[2]), rel=1e-5)


class _FakeStore:
    def __init__(self, vecs, logits=None):
        self.vecs, self._logits = vecs, logits or {}

    def attention(self, cid):
        return self.vecs[cid]

    def logits(self, cid):
        return self._logits.get(cid)


def test_targets_matrix_and_bad_vectors():
    store = _FakeStore({"a": np.ones(49) / 49, "b": np.eye(49)[10], "bad": np.array([np.nan] * 49), "short": np.ones(10)})
    m = teacher_attention_targets(store, ["a", "b"], 24)
    assert m.shape == (2, 24) and m.dtype == np.float32
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(KwsKdError, match="'bad'.*NaN or inf"):
        teacher_attention_targets(store, ["a", "bad"], 24, source="S")
    with pytest.raises(KwsKdError, match="10 frames.*n'=24"):
        teacher_attention_targets(store, ["short"], 24)
    lstore = _FakeStore({}, {"a": np.array([1.0, np.inf, 0.0])})
    with pytest.raises(KwsKdError, match="logits of clip 'a'.*NaN or inf"):
        teacher_logit_targets(lstore, ["a"], 3)


def test_first_frame_neighbour_removes_self_spike():
    """The self-share on frame 0 is replaced by frame 1's value before resampling; `keep` leaves it."""
    v = np.full(8, 0.05)
    v[0], v[5] = 0.4, 0.25  # spike at the self-frame, keyword at frame 5
    store = _FakeStore({"a": v / v.sum()})
    fixed = teacher_attention_targets(store, ["a"], 8, first_frame="neighbour")[0]
    kept = teacher_attention_targets(store, ["a"], 8, first_frame="keep")[0]
    expected = np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.25, 0.05, 0.05])
    np.testing.assert_allclose(fixed, expected / expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(kept, v / v.sum(), rtol=1e-6)
    assert fixed.argmax() == 5 and kept.argmax() == 0
    with pytest.raises(KwsKdError, match="first-frame mode 'drop'"):
        teacher_attention_targets(store, ["a"], 8, first_frame="drop")


def test_lambda_zero_gradients_real_student_equal_vanilla_build():
    """With a registry student: lambda=0 through the training model == CE through the vanilla build."""
    import keras
    import tensorflow as tf

    from kws_kd.run import strip_model
    from kws_kd.students.registry import build_student

    keras.utils.set_random_seed(0)
    train_model = build_student("crnn", 3, 16000, attention=True)
    vanilla = build_student("crnn", 3, 16000, attention=False)
    vanilla.set_weights(strip_model(train_model).get_weights())
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 16000)) * 0.1).astype(np.float32)
    y = np.array([0, 2], np.int32)
    a_t = _softmax(rng.normal(size=(2, train_model.outputs[1].shape[1]))).astype(np.float32)
    with tf.GradientTape() as tape:
        logits, att = train_model(x, training=False)
        total = tf.reduce_mean(DistillLoss(kd_lambda=0.0)(logits, y, att, a_t)["total"])
    grads = {v.path: g for v, g in zip(train_model.trainable_variables, tape.gradient(total, train_model.trainable_variables))}
    with tf.GradientTape() as tape:
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=vanilla(x, training=False)))
    vgrads = tape.gradient(ce, vanilla.trainable_variables)
    assert float(total) == pytest.approx(float(ce), rel=1e-6)
    shared = [g for g in grads.values() if g is not None]
    assert len(shared) == len(vgrads)  # branch variables get no gradient at all
    for g, vg in zip(shared, vgrads):
        np.testing.assert_allclose(g.numpy(), vg.numpy(), rtol=1e-5, atol=1e-7)
