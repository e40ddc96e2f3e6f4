"""Fused training recurrence (`kws_kd.students.recurrent.RNN(fused=True)`).

Checks against `keras.layers.RNN` on the same cell: outputs, gradients w.r.t. the
input and every cell variable (graph and eager), bfloat16 matmuls, the fallback
to the generic loop, weight-file compatibility and config round trips.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import h5py  # noqa: E402
import keras  # noqa: E402

from kws_kd.students.recurrent import RNN, GRUCell, PeepholeLSTMCell  # noqa: E402

B, T, D = 3, 7, 5
CELLS = {"gru": lambda: GRUCell(6), "lstmp": lambda: PeepholeLSTMCell(6, 4)}


def _randomize(cell, seed: int) -> None:
    """Non-zero random values in every variable (biases, peepholes too), so every term counts."""
    rng = np.random.default_rng(seed)
    for v in cell.weights:
        v.assign(rng.normal(0.0, 0.5, v.shape).astype(np.float32))


def _pair(kind: str, seed: int = 1, **kwargs):
    """A built cell shared by a reference `keras.layers.RNN` and a fused `RNN`."""
    cell = CELLS[kind]()
    reference = keras.layers.RNN(cell, **kwargs)
    fused = RNN(cell, fused=True, **kwargs)
    reference.build((None, None, D))
    _randomize(cell, seed)
    return cell, reference, fused


def _forward_and_grads(layer, cell, x, w, graph: bool):
    """Output and d(sum(w * output)) w.r.t. the input and every cell variable, as float64."""

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w)
        return [y, *tape.gradient(loss, [x, *cell.trainable_weights])]

    fn = tf.function(run) if graph else run
    return [np.asarray(t, np.float64) for t in fn(tf.constant(x))]


def _no_generic_loop(monkeypatch):
    """Make the generic Keras loop raise, so a passing call proves the fused path ran."""

    def boom(*args, **kwargs):
        raise AssertionError("generic keras.layers.RNN loop used")

    monkeypatch.setattr(keras.layers.RNN, "inner_loop", boom)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12))


@pytest.mark.parametrize("graph", [True, False], ids=["graph", "eager"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fw", "bw"])
@pytest.mark.parametrize("return_sequences", [True, False], ids=["seq", "last"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_matches_keras_rnn(kind, return_sequences, go_backwards, graph, monkeypatch):
    cell, reference, fused = _pair(kind, return_sequences=return_sequences, go_backwards=go_backwards)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    w = rng.normal(size=reference(x).shape).astype(np.float32)
    expected = _forward_and_grads(reference, cell, x, w, graph)
    _no_generic_loop(monkeypatch)
    got = _forward_and_grads(fused, cell, x, w, graph)

    assert len(got) == 2 + len(cell.trainable_weights)
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=1e-5)
    names = ["x"] + [v.path for v in cell.trainable_weights]
    for name, g, e in zip(names, got[1:], expected[1:]):
        assert np.max(np.abs(e)) > 0, name  # every gradient is exercised
        assert _relative(e, g) < 1e-5, (name, _relative(e, g))


@pytest.mark.parametrize("kind", list(CELLS))
def test_dynamic_shapes_longer_sequence(kind, monkeypatch):
    """Batch and time unknown when traced; a longer sequence keeps the match."""
    cell, reference, fused = _pair(kind, seed=3, return_sequences=True)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 60, D)).astype(np.float32)
    w = rng.normal(size=(4, 60, cell.output_size)).astype(np.float32)

    def make(layer):
        @tf.function(input_signature=[tf.TensorSpec([None, None, D], tf.float32)])
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * tf.constant(w)[: tf.shape(y)[0], : tf.shape(y)[1]])
            return [y, *tape.gradient(loss, [x, *cell.trainable_weights])]

        return run

    expected = [np.asarray(t, np.float64) for t in make(reference)(x)]
    _no_generic_loop(monkeypatch)
    run = make(fused)
    got = [np.asarray(t, np.float64) for t in run(x)]
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=1e-5)
    for g, e in zip(got[1:], expected[1:]):
        assert _relative(e, g) < 1e-5
    # The same trace serves another batch size and length.
    y = run(rng.normal(size=(2, 9, D)).astype(np.float32))[0]
    assert tuple(y.shape) == (2, 9, cell.output_size)


@pytest.mark.parametrize("kind", list(CELLS))
def test_bfloat16_matmuls(kind, monkeypatch):
    cell = CELLS[kind]()
    f32 = RNN(cell, fused=True, return_sequences=True)
    bf16 = RNN(cell, fused=True, return_sequences=True, matmul_dtype="bfloat16")
    f32.build((None, None, D))
    _randomize(cell, 5)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(B, 20, D)).astype(np.float32)
    w = rng.normal(size=(B, 20, cell.output_size)).astype(np.float32)
    _no_generic_loop(monkeypatch)
    a = _forward_and_grads(f32, cell, x, w, graph=True)
    b = _forward_and_grads(bf16, cell, x, w, graph=True)

    # O(1) activations; bfloat16 keeps 8 mantissa bits (relative step 2^-8 ~ 4e-3).
    diff = np.max(np.abs(a[0] - b[0]))
    assert 0 < diff < 2e-2  # > 0: the bfloat16 path really ran
    assert b[0].dtype == np.float64 and np.all(np.isfinite(b[0]))
    for ga, gb in zip(a[1:], b[1:]):
        assert np.all(np.isfinite(gb))
        cosine = np.sum(ga * gb) / (np.linalg.norm(ga) * np.linalg.norm(gb))
        assert cosine > 0.99


def test_unsupported_calls_fall_back_to_keras():
    """Mask, initial state, return_state, unroll and fused=False use the generic loop, same results."""
    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(B, T, D)).astype(np.float32))
    mask = tf.constant(np.arange(T)[None, :] < np.array([[T], [4], [2]]))
    cell, reference, fused = _pair("lstmp", seed=8, return_sequences=True)
    np.testing.assert_allclose(fused(x, mask=mask), reference(x, mask=mask), atol=1e-6)
    state = [tf.constant(rng.normal(size=(B, s)).astype(np.float32)) for s in cell.state_size]
    np.testing.assert_allclose(fused(x, initial_state=state), reference(x, initial_state=state), atol=1e-6)

    with_state = RNN(cell, fused=True, return_state=True)
    ref_state = keras.layers.RNN(cell, return_state=True)
    for a, b in zip(with_state(x), ref_state(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)

    calls = []
    original = keras.layers.RNN.inner_loop

    def spy(self, *args, **kwargs):
        calls.append(self.name)
        return original(self, *args, **kwargs)

    keras.layers.RNN.inner_loop = spy
    try:
        RNN(cell, fused=True, unroll=True)(x)
        RNN(cell)(x)
        RNN(cell, fused=True)(x, mask=mask)
        RNN(cell, fused=True)(x)
    finally:
        keras.layers.RNN.inner_loop = original
    assert len(calls) == 3  # all but the last (fused) call


def _model(layer_factory, kind: str):
    cell = CELLS[kind]()
    inputs = keras.Input((T, D))
    hidden = layer_factory(cell)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def _dataset_paths(path) -> list[str]:
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


@pytest.mark.parametrize("kind", list(CELLS))
def test_weight_files_interchange_with_keras_rnn(kind, tmp_path):
    fused = _model(lambda c: RNN(c, fused=True, return_sequences=False), kind)
    plain = _model(lambda c: keras.layers.RNN(c, return_sequences=False), kind)
    export = _model(lambda c: keras.layers.RNN(c, unroll=True), kind)
    for layer in fused.layers:
        if isinstance(layer, keras.layers.RNN):
            _randomize(layer.cell, 9)
    x = np.random.default_rng(10).normal(size=(B, T, D)).astype(np.float32)
    fused.save_weights(tmp_path / "fused.weights.h5")
    plain.save_weights(tmp_path / "plain.weights.h5")

    paths = _dataset_paths(tmp_path / "fused.weights.h5")
    assert any("rnn/cell/vars" in p for p in paths)
    assert paths == _dataset_paths(tmp_path / "plain.weights.h5")

    plain.load_weights(tmp_path / "fused.weights.h5")
    export.load_weights(tmp_path / "fused.weights.h5")
    for loaded in (plain, export):
        for a, b in zip(loaded.get_weights(), fused.get_weights()):
            np.testing.assert_array_equal(a, b)
        # Different loops (fused vs generic, unrolled), so equal up to float32 rounding.
        np.testing.assert_allclose(loaded.predict(x, verbose=0), fused.predict(x, verbose=0), atol=1e-5)

    plain.save_weights(tmp_path / "plain2.weights.h5")
    other = _model(lambda c: RNN(c, fused=True), kind)
    other.load_weights(tmp_path / "plain2.weights.h5")
    np.testing.assert_array_equal(other.predict(x, verbose=0), fused.predict(x, verbose=0))


def test_one_training_step_matches_keras_rnn():
    """Inside `model.fit` (Keras's compiled train step) the fused layer trains like the plain one."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(8, T, D)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    models = [_model(lambda c: RNN(c, fused=True), "gru"), _model(lambda c: keras.layers.RNN(c), "gru")]
    _randomize(models[0].layers[1].cell, 12)
    models[1].set_weights(models[0].get_weights())
    start = [w.copy() for w in models[0].get_weights()]
    for m in models:
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for w0, a, b in zip(start, models[0].get_weights(), models[1].get_weights()):
        assert not np.allclose(w0, a)  # every variable got a gradient step
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_config_round_trip():
    layer = RNN(PeepholeLSTMCell(6, 4), fused=True, matmul_dtype="bfloat16", return_sequences=True, name="lstm")
    config = layer.get_config()
    assert config["fused"] is True and config["matmul_dtype"] == "bfloat16"
    clone = RNN.from_config(config)
    assert (clone.fused, clone.matmul_dtype, clone.return_sequences) == (True, "bfloat16", True)
    assert isinstance(clone.cell, PeepholeLSTMCell) and clone.cell.projection == 4

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is RNN and restored.fused and restored.matmul_dtype == "bfloat16"
    assert keras.saving.get_registered_name(RNN) == "kws_kd>RNN"

    default = RNN(GRUCell(3))
    assert (default.fused, default.matmul_dtype) == (False, "float32")


def test_invalid_matmul_dtype():
    with pytest.raises(ValueError, match="float16"):
        RNN(GRUCell(3), matmul_dtype="float16")
