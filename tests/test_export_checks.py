"""`kws-kd export` flags and the per-mode verification bounds (no conversion here: fast)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from kws_kd.errors import KwsKdError


def _parse(argv):
    from kws_kd.cli import export

    parser = argparse.ArgumentParser(prog="kws-kd")
    export.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["export", *argv])


def test_tflite_flag_is_optional_and_means_the_tflite_format():
    base = ["--run", "R", "--out", "m.tflite"]
    assert _parse(["--tflite", *base]).format == "tflite"  # the documented command
    assert _parse(base).format == "tflite"
    assert _parse(["--format", "tflite", *base]).format == "tflite"
    with pytest.raises(SystemExit):
        _parse(["--format", "onnx", *base])
    with pytest.raises(SystemExit):
        _parse(["--quantize", "int4", *base])


def _report(lite, ref, keras_acc=None, tflite_acc=None):
    from kws_kd.tflite.verify import relative_logit_error

    report = {"clips": len(ref), "logit_error": relative_logit_error(np.asarray(lite), np.asarray(ref))}
    if keras_acc is not None:
        report["keras"], report["tflite"] = {"accuracy": keras_acc}, {"accuracy": tflite_acc}
    return report


def test_relative_logit_error_is_scaled_by_the_largest_logit_but_never_below_one():
    from kws_kd.tflite.verify import relative_logit_error

    assert relative_logit_error(np.array([[10.5, 0.0]]), np.array([[10.0, 0.0]])) == pytest.approx(0.05)
    assert relative_logit_error(np.array([[0.3, 0.0]]), np.array([[0.1, 0.0]])) == pytest.approx(0.2)
    assert np.isnan(relative_logit_error(np.zeros((0, 2)), np.zeros((0, 2))))


@pytest.mark.parametrize("mode, error, ok", [("float32", 5e-5, True), ("float32", 5e-4, False),
                                             ("float16", 5e-3, True), ("float16", 5e-2, False),
                                             ("dynamic", 0.9, True), ("int8", 0.9, True)])
def test_float_modes_have_a_logit_bound_quantized_ones_none(mode, error, ok):
    from kws_kd.tflite.verify import check_bounds

    ref = np.array([[4.0, -1.0, 0.5]] * 3)
    lite = ref + np.array([error * 4.0, 0.0, 0.0])
    if ok:
        check_bounds(_report(lite, ref), mode, "m")
    else:
        with pytest.raises(KwsKdError, match=f"m: the {mode} file is too far from the Keras model on 3 held-out"):
            check_bounds(_report(lite, ref), mode, "m")


def test_quantized_modes_bound_the_accuracy_drop_not_the_agreement():
    from kws_kd.tflite.verify import check_bounds

    ref = np.array([[1.0, 0.99], [0.99, 1.0]])
    flipped = ref[:, ::-1]  # every top-1 decision flips, the logits move by 0.01
    check_bounds(_report(flipped, ref, 0.19, 0.16), "int8", "m")  # a low-margin model: agreement 0, fine
    with pytest.raises(KwsKdError, match="m: the int8 file loses 0.200 of the Keras model's metric"):
        check_bounds(_report(flipped, ref, 0.9, 0.7), "int8", "m")
    with pytest.raises(KwsKdError, match="too far"):
        check_bounds(_report(flipped, ref), "float32", "m")  # float32 must be the same maths
    with pytest.raises(KwsKdError):
        check_bounds({"clips": 3, "logit_error": float("nan")}, "float32", "m")
