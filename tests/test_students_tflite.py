"""Every stripped student converts to TFLite with builtin ops only and matches Keras.

One conversion per student at 1 s (float32, `for_export=True`: batch 1, unrolled
recurrences), with weights carried over from an 8 s training build; for the three
branch students the vanilla build must give the very same TFLite op list.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter

from kws_kd.students import STUDENTS, build_student, strip  # noqa: E402

SR = 16000


def convert(model, tmp_path, tag: str) -> bytes:
    saved = tmp_path / f"saved_{tag}"
    model.export(
        str(saved),
        format="tf_saved_model",
        input_signature=[tf.TensorSpec([1, SR], tf.float32)],
        verbose=False,
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(content: bytes, x: np.ndarray):
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert tuple(inp["shape"]) == (1, SR) and inp["dtype"] == np.float32
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    return interpreter.get_tensor(out["index"]), ops


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDENTS))
def test_stripped_student_converts_builtins_only_and_matches_keras(name, tmp_path):
    trained = build_student(name, 12, 8 * SR)  # stands in for a run trained at 8 s
    reference = strip(build_student(name, 12, SR))
    reference.set_weights(strip(trained).get_weights())
    export = strip(build_student(name, 12, SR, for_export=True))
    export.set_weights(strip(trained).get_weights())

    x = np.random.default_rng(7).uniform(-0.5, 0.5, (1, SR)).astype(np.float32)
    got, ops = run_tflite(convert(export, tmp_path, "stripped"), x)
    assert not [op for op in ops if op.startswith("FLEX") or op in ("CUSTOM", "WHILE")], ops
    assert "RFFT2D" in ops  # the MFCC front end is inside the model
    want = tf.function(lambda a: reference(a, training=False))(tf.constant(x)).numpy()
    assert got.shape == (1, 12)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

    if STUDENTS[name].branch:
        vanilla = build_student(name, 12, SR, attention=False, for_export=True)
        vanilla.set_weights(export.get_weights())
        got_vanilla, vanilla_ops = run_tflite(convert(vanilla, tmp_path, "vanilla"), x)
        assert vanilla_ops == ops  # same op list, op for op: zero inference overhead
        np.testing.assert_array_equal(got_vanilla, got)
