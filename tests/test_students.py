"""Students: parameter counts, shapes at 1 s and 8 s, strip, weight transfer, cells, registry, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from kws_kd.errors import KwsKdError  # noqa: E402
from kws_kd.students import STUDENTS, attention_length, build_student, config_to_dict, make_config, strip  # noqa: E402
from kws_kd.students.attention import BRANCH_PREFIX  # noqa: E402
from kws_kd.students.recurrent import GRUCell, PeepholeLSTMCell, bidirectional  # noqa: E402

SR = 16000
NAMES = list(STUDENTS)
BRANCH_NAMES = ["lstm_p", "tc_resnet", "crnn"]

# kws_streaming figures (12 labels, 1 s) the issue asks for, and our own exact counts.
# TC-ResNet (50,50,50,50,50,72,72), 40 MFCC, 12 labels, derived in docs/students.md.
KWS_STREAMING = {"lstm_p": 545_900, "crnn": 467_800, "att_rnn": 496_500, "mhatt_rnn": 743_000}
EXACT = {"lstm_p": 545_912, "tc_resnet": 366_084, "crnn": 467_772, "att_rnn": 496_519, "mhatt_rnn": 743_047}


def _run(model, x):
    """Forward pass in a compiled graph (eager RNN loops are slow at 8 s)."""
    return tf.function(lambda a: model(a, training=False))(tf.constant(x))


def _audio(batch, seconds, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (batch, int(seconds * SR))).astype(np.float32)


@pytest.fixture(scope="module")
def built_1s():
    return {name: build_student(name, 12, SR) for name in NAMES}


def test_registry_names():
    assert NAMES == ["lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn"]
    assert [n for n in NAMES if STUDENTS[n].branch] == BRANCH_NAMES


@pytest.mark.parametrize("name", NAMES)
def test_stripped_param_count(name, built_1s):
    stripped = strip(built_1s[name]).count_params()
    assert stripped == EXACT[name]
    if name in KWS_STREAMING:
        assert abs(stripped - KWS_STREAMING[name]) / KWS_STREAMING[name] < 0.02


def test_tc_resnet_param_derivation(built_1s):
    # first conv 3*40*50 + BN(4*50); 4 same-width blocks 2*(9*50*50 + 4*50);
    # widening block: 1x1 shortcut 50*72 + BN, 9*50*72 + BN, 9*72*72 + BN;
    # last block 2*(9*72*72 + 4*72); head 1x1 conv 72*12 + 12.
    derived = (
        (3 * 40 * 50 + 200)
        + 4 * 2 * (9 * 50 * 50 + 200)
        + (50 * 72 + 288) + (9 * 50 * 72 + 288) + (9 * 72 * 72 + 288)
        + 2 * (9 * 72 * 72 + 288)
        + (72 * 12 + 12)
    )
    assert strip(built_1s["tc_resnet"]).count_params() == derived == 366_084


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seconds", [1, 8])
def test_builds_and_runs(name, seconds, built_1s):
    model = built_1s[name] if seconds == 1 else build_student(name, 12, seconds * SR)
    logits, weights = _run(model, _audio(2, seconds))
    n_prime = attention_length(name, seconds * SR)
    assert logits.shape == (2, 12)
    assert weights.shape == (2, n_prime)
    assert model.output_shape == [(None, 12), (None, n_prime)]
    w = weights.numpy()
    assert (w >= 0).all() and np.allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(logits.numpy()).all()


def test_attention_lengths():
    assert [attention_length(n, SR) for n in NAMES] == [49, 25, 43, 49, 49]
    assert [attention_length(n, 8 * SR) for n in NAMES] == [399, 200, 393, 399, 399]


@pytest.mark.parametrize("name", NAMES)
def test_strip_gives_exact_logits_and_shares_weights(name, built_1s):
    model = built_1s[name]
    stripped = strip(model)
    x = _audio(3, 1, seed=1)
    logits, _ = model(x, training=False)
    np.testing.assert_array_equal(stripped(x, training=False).numpy(), logits.numpy())
    assert len(stripped.outputs) == 1 and stripped.output_shape == (None, 12)
    assert not any(layer.name.startswith(BRANCH_PREFIX) for layer in stripped.layers)
    # Shared, not copied: every stripped variable is one of the training model's.
    train_ids = {id(v) for v in model.weights}
    assert all(id(v) in train_ids for v in stripped.weights)
    branch_params = model.count_params() - stripped.count_params()
    if name in BRANCH_NAMES:
        d = {"lstm_p": 200, "tc_resnet": 72, "crnn": 256}[name]
        assert branch_params == d * d + d  # exactly the query Dense
    else:
        assert branch_params == 0


@pytest.mark.parametrize("name", NAMES)
def test_stripped_equals_vanilla_graph(name, built_1s):
    stripped = strip(built_1s[name])
    vanilla = build_student(name, 12, SR, attention=False)
    assert [l.name for l in stripped.layers] == [l.name for l in vanilla.layers]
    assert [type(l).__name__ for l in stripped.layers] == [type(l).__name__ for l in vanilla.layers]
    assert [(w.path, w.shape) for w in stripped.weights] == [(w.path, w.shape) for w in vanilla.weights]
    assert strip(vanilla) is vanilla


def test_training_mode_runs_and_trains():
    """A gradient step on the distillation-style loss changes the weights (dropout/SpecAugment active)."""
    model = build_student("crnn", 12, SR)
    x = _audio(4, 1, seed=2)
    before = [w.numpy().copy() for w in model.trainable_weights]
    opt = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        logits, att = model(x, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant([0, 1, 2, 3]), logits))
        loss += tf.reduce_mean(tf.reduce_sum(att * tf.math.log(att * att.shape[1] + 1e-9), axis=1))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)  # the branch's query gets a gradient too
    opt.apply_gradients(zip(grads, model.trainable_weights))
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


@pytest.mark.parametrize("name", NAMES)
def test_weights_transfer_between_clip_lengths_and_export(name, tmp_path):
    """Trained at 8 s, rebuilt at 1 s (training graph) and for export (batch 1, unrolled).

    The export model's outputs are compared with LiteRT and the 1 s Keras model in
    test_students_tflite.py; here: the weight lists line up and nothing loops.
    """
    long_model = build_student(name, 12, 8 * SR)
    one_s = build_student(name, 12, SR)
    one_s.set_weights(long_model.get_weights())
    export = build_student(name, 12, SR, attention=False, for_export=True)
    export.set_weights(strip(long_model).get_weights())
    assert export.input_shape == (1, SR)
    assert [w.path for w in export.weights] == [w.path for w in strip(one_s).weights]
    for a, b in zip(export.get_weights(), strip(long_model).get_weights()):
        np.testing.assert_array_equal(a, b)
    # A run's .weights.h5 (training build, with branch) loads by layer name into
    # the vanilla export build: what `kws-kd export` does with RUN/best.weights.h5.
    long_model.save_weights(tmp_path / "best.weights.h5")
    loaded = build_student(name, 12, SR, attention=False, for_export=True)
    loaded.load_weights(tmp_path / "best.weights.h5")
    for a, b in zip(loaded.get_weights(), strip(long_model).get_weights()):
        np.testing.assert_array_equal(a, b)
    rnns = lambda m: [l for l in m.layers if isinstance(l, keras.layers.RNN)]  # noqa: E731
    assert len(rnns(export)) == len(rnns(one_s)) == {"tc_resnet": 0, "att_rnn": 4, "mhatt_rnn": 4}.get(name, 1)
    assert all(l.unroll for l in rnns(export)) and not any(l.unroll for l in rnns(one_s))


def test_peephole_lstm_cell_matches_numpy():
    rng = np.random.default_rng(0)
    b, t, d, u, p = 2, 5, 3, 4, 2
    cell = PeepholeLSTMCell(u, p)
    layer = keras.layers.RNN(cell, return_sequences=True)
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    layer(x)
    weights = [rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in cell.weights]
    cell.set_weights(weights)
    kernel, rec, bias, peep, proj = weights
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r, c, out = np.zeros((b, p)), np.zeros((b, u)), []
    for step in range(t):
        z = x[:, step] @ kernel + r @ rec + bias
        i = sig(z[:, :u] + peep[0] * c)
        f = sig(z[:, u : 2 * u] + peep[1] * c)
        c = f * c + i * np.tanh(z[:, 2 * u : 3 * u])
        o = sig(z[:, 3 * u :] + peep[2] * c)
        r = (o * np.tanh(c)) @ proj
        out.append(r)
    np.testing.assert_allclose(layer(x).numpy(), np.stack(out, axis=1), rtol=1e-5, atol=1e-5)
    assert sum(int(np.prod(w.shape)) for w in cell.weights) == d * 4 * u + p * 4 * u + 4 * u + 3 * u + u * p


def test_gru_cell_and_bidirectional_match_keras_gru():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 5)).astype(np.float32)
    ref = keras.layers.Bidirectional(keras.layers.GRU(6, return_sequences=True, reset_after=True))
    ref_out = ref(x)
    fw, bw = GRUCell(6), GRUCell(6)
    for unroll in (False, True):
        inp = keras.Input((7, 5))
        model = keras.Model(inp, bidirectional(fw, bw, inp, unroll=unroll, name="bi"))
        if not unroll:
            fw.set_weights(ref.forward_layer.get_weights())
            bw.set_weights(ref.backward_layer.get_weights())
        np.testing.assert_allclose(model(x).numpy(), ref_out.numpy(), rtol=1e-5, atol=1e-5)


def test_registry_errors_and_config_round_trip():
    with pytest.raises(KwsKdError, match="unknown student 'ds_cnn'"):
        build_student("ds_cnn", 12, SR)
    with pytest.raises(KwsKdError, match="attention_head 4"):
        build_student("mhatt_rnn", 12, SR, make_config("mhatt_rnn", {"attention_head": 4}))
    with pytest.raises(KwsKdError, match="unknown option"):
        make_config("crnn", {"gru_unit": 3})
    with pytest.raises(KwsKdError, match="shorter than one"):
        build_student("lstm_p", 12, 100)
    cfg = make_config("tc_resnet")
    again = make_config("tc_resnet", json.loads(json.dumps(config_to_dict(cfg))))
    assert again == cfg and cfg.front_end.num_coeffs == 40
    small = build_student("lstm_p", 5, SR, {"units": 16, "projection": 8})
    assert small.count_params() == (20 * 64 + 8 * 64 + 64 + 48 + 16 * 8) + (8 * 5 + 5) + (8 * 8 + 8)


def test_mhatt_rnn_attention_head_is_selectable():
    x = _audio(1, 1, seed=5)
    m0 = build_student("mhatt_rnn", 12, SR)
    m2 = build_student("mhatt_rnn", 12, SR, make_config("mhatt_rnn", {"attention_head": 2}))
    m2.set_weights(m0.get_weights())
    l0, a0 = m0(x, training=False)
    l2, a2 = m2(x, training=False)
    np.testing.assert_array_equal(l0.numpy(), l2.numpy())
    assert not np.allclose(a0.numpy(), a2.numpy())


def test_cli_models_json(capsys):
    from kws_kd.cli.main import main

    assert main(["models", "--json", "--clip-seconds", "2", "--num-labels", "12"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == NAMES
    by_name = {r["name"]: r for r in rows}
    assert by_name["crnn"]["attention_length"] == attention_length("crnn", 2 * SR) == 93
    assert by_name["lstm_p"]["params_inference"] == EXACT["lstm_p"]
    assert by_name["lstm_p"]["params_with_attention"] == EXACT["lstm_p"] + 200 * 200 + 200
    assert by_name["att_rnn"]["params_with_attention"] == by_name["att_rnn"]["params_inference"]


def test_cli_models_bad_clip(capsys):
    from kws_kd.cli.main import main

    assert main(["models", "--clip-seconds", "0.01"]) == 2
    assert "shorter than one" in capsys.readouterr().err


def test_mac_count_by_hand(built_1s):
    from kws_kd.students.macs import model_macs

    frames = 49
    # matmul DFT (1024 = 32 x 32; stage 1: 32 columns x 20 rows -> 32 complex,
    # stage 2: 32 twiddled 32-point DFTs -> 16 complex for bins < 512) + mel over
    # FFT bins 2..486 (15.625 Hz each: 31-7594 Hz) + DCT
    dft = 32 * 20 * 64 + 32 * 64 * 32
    front_end = frames * (dft + 485 * 40 + 40 * 20)
    lstm_steps = frames * ((20 + 200) * 4 * 500 + 500 * 200)
    assert model_macs(strip(built_1s["lstm_p"])) == front_end + lstm_steps + 200 * 12
    branch = 200 * 200 + frames * 200
    assert model_macs(built_1s["lstm_p"]) == front_end + lstm_steps + 200 * 12 + branch
    crnn = (
        front_end
        + 47 * 18 * 9 * 16 + 43 * 16 * 15 * 16 * 16  # convs on 'valid' outputs
        + 43 * (256 + 256) * 3 * 256  # GRU steps
        + 256 * 128 + 128 * 256 + 256 * 12
    )
    assert model_macs(strip(built_1s["crnn"])) == crnn
