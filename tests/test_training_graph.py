"""The fast training graph (`BuildOptions.fast_graph`) computes what the export graph computes.

stft front end instead of the matmul DFT, TC-ResNet with time on the width axis,
fused recurrences with a hand-written backward pass: the same weights must give
the same logits and attention, and the same gradients, as the plain forms that
export to TFLite. bfloat16 training graphs are checked against float32 with a
loose bound (they are an approximation by design).
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kws_kd.students.registry import STUDENTS, build_student  # noqa: E402

SAMPLES = 8000  # 0.5 s: 24 frames, enough for every student's convolutions and n'


def _pair(name: str, features_input: bool = False, **fast_options):
    cfg = {"spec_augment": False, "dropout": 0.0}  # no random masks: both graphs see the same maths
    import keras

    keras.utils.set_random_seed(0)  # the same initial weights every run: the bfloat16 bounds are measured on them
    plain = build_student(name, 5, SAMPLES, cfg, fast_graph=False, features_input=features_input)
    fast = build_student(name, 5, SAMPLES, cfg, features_input=features_input, **fast_options)
    fast.set_weights(plain.get_weights())
    return plain, fast


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(0, 0.2, (3, SAMPLES)).astype(np.float32)), tf.constant([0, 3, 4])


def _features(name: str, audio):
    """The MFCCs a features-input build eats (the export front end's, so both graphs get the very same input)."""
    model = build_student(name, 5, SAMPLES, fast_graph=False)
    from kws_kd.students.base import student_info

    return student_info(model).layers["mfcc"](audio)


def _loss_and_grads(model, audio, labels):
    with tf.GradientTape() as tape:
        logits, att = model(audio, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32)))
        loss = loss + tf.reduce_sum(tf.cast(att, tf.float32) * tf.range(att.shape[1], dtype=tf.float32)) * 1e-2
    return loss, tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("name", list(STUDENTS))
def test_fast_graph_matches_plain_graph(name):
    """Same logits and attention from audio; same loss and gradients from the same features."""
    plain, fast = _pair(name)
    audio, labels = _batch()
    for a, b in zip(plain(audio), fast(audio)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
    # Gradients from identical MFCCs: the front-end forms differ by ~1e-5 (test_features.py), and
    # training-mode BN over a 3-clip batch would amplify that into the conv gradients.
    plain, fast = _pair(name, features_input=True)
    features = _features(name, audio)
    loss_p, grads_p = _loss_and_grads(plain, features, labels)
    loss_f, grads_f = _loss_and_grads(fast, features, labels)
    assert float(loss_f) == pytest.approx(float(loss_p), rel=1e-5)
    for v, gp, gf in zip(plain.trainable_variables, grads_p, grads_f):
        scale = float(tf.reduce_max(tf.abs(gp))) + 1e-12
        np.testing.assert_allclose(gf.numpy() / scale, gp.numpy() / scale, atol=1e-4, err_msg=v.path)


# bfloat16 rounds every activation by up to 2^-9. Through TC-ResNet's 13 BN'd convolutions
# the gradient of a 3-clip batch keeps cosine 0.93-0.98 to float32 over six random inits
# (0.931 for the seeded one used here); with its first conv in bfloat16 too (MFCC offsets
# cancelled by BN) it fell to 0.86. Unseeded, the 0.95 bound this test had failed now and then.
@pytest.mark.parametrize("name,min_cosine", [("tc_resnet", 0.9), ("crnn", 0.99)])
def test_bfloat16_graph_is_close_to_float32(name, min_cosine):
    plain, fast = _pair(name, precision="mixed_bfloat16")
    audio, labels = _batch(1)
    logits_p = plain(audio)[0].numpy()
    logits_f = fast(audio)[0].numpy()
    assert logits_f.dtype == np.float32  # logits stay float32 for the loss
    assert np.abs(logits_f - logits_p).max() <= 0.05 * (np.abs(logits_p).max() + 1.0)
    _, grads_p = _loss_and_grads(plain, audio, labels)
    _, grads_f = _loss_and_grads(fast, audio, labels)
    flat_p = np.concatenate([g.numpy().ravel() for g in grads_p])
    flat_f = np.concatenate([g.numpy().astype(np.float32).ravel() for g in grads_f])
    cosine = flat_p @ flat_f / (np.linalg.norm(flat_p) * np.linalg.norm(flat_f))
    assert cosine > min_cosine
    assert all(v.dtype == "float32" for v in fast.weights)  # variables stay float32
