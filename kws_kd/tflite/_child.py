"""Child-process body of the TFLite conversion (`python -m kws_kd.tflite._child`).

The TensorFlow converter can die with a segfault (full-int8 calibration of
loop-based recurrences, FACTS §5). Running it here keeps the CLI alive so the
parent can turn a crash into a one-line `KwsKdError` naming student and mode.
Arguments: JOB [JOB ...] [--representative REP.npy] [--int8-io], where a JOB
is `SAVED_MODEL::MODE=OUT.tflite`. Several jobs share one child (one TensorFlow
import); after each file is written the child prints `done N` (the job's
index), so when it dies the parent knows which job crashed.
"""

from __future__ import annotations

import argparse
import os
import sys


def _samples(representative):
    """The representative-dataset generator: one [1, ...] sample per row, or per row of each named input."""
    if isinstance(representative, dict):  # streaming files: {input name: [N, ...]}
        names = list(representative)
        count = len(representative[names[0]])

        def gen_named():
            for i in range(count):
                yield {name: representative[name][i][None, ...].astype("float32") for name in names}

        return gen_named

    def gen():
        for row in representative:
            yield [row[None, ...].astype("float32")]

    return gen


def _configure(converter, tf, mode: str, representative, int8_io: bool) -> None:
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise SystemExit("int8 needs a representative set")

        converter.representative_dataset = _samples(representative)
        # One scale per dense layer instead of one per output channel. An unrolled
        # recurrence has one FULLY_CONNECTED per frame, each with its own int32 bias
        # whose scale is input_scale * weight_scale: per-channel, that is 384
        # scales + zero points per bias and frame (15 MB of the 31 MB Att-RNN file
        # at 8 s). Conv layers keep per-channel scales.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def _scoped_nodes(tf, saved_model: str, scopes: list[str]) -> list[str]:
    """Output tensor names (as the converter names nodes) of the ops inside the given layer scopes."""
    import re

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    it = Interpreter(model_content=conv.convert(), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = it.get_tensor_details()
    pattern = re.compile("|".join(rf"(^|/){re.escape(s)}(_\d+)?/" for s in scopes))
    names = []
    for op in it._get_ops_details():
        for out in op["outputs"]:
            name = tensors[out]["name"]
            if pattern.search(name):
                names.append(name)
    return names


def _selective_int8(tf, saved_model: str, converter, representative, scopes: list[str]) -> bytes:
    """Full int8 except the ops of `scopes` (the MFCC front end), which stay float.

    Quantizing the magnitude spectrum / mel energies to int8 with one scale
    crushes the low-energy bins before the log (measured: a trained TC-ResNet
    dropped from 100 % to 95.8 % top-1 agreement with float32); keeping the
    front end float costs little because it has no weights worth quantizing.
    """
    nodes = _scoped_nodes(tf, saved_model, scopes)
    if not nodes:
        return converter.convert()

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_samples(representative), debug_options=options)
    return debugger.get_nondebug_quantized_model()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kws_kd.tflite._child")
    parser.add_argument("jobs", nargs="+", help="SAVED_MODEL::MODE=OUT.tflite")
    parser.add_argument("--representative")
    parser.add_argument("--int8-io", action="store_true")
    parser.add_argument(
        "--float-scope", action="append", default=[],
        help="int8: keep ops whose output tensor name has this layer scope in float (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from kws_kd.tflite.names import shorten_tensor_names

    representative = None
    if args.representative:
        loaded = np.load(args.representative)
        representative = {k: loaded[k] for k in loaded.files} if hasattr(loaded, "files") else loaded
    for i, job in enumerate(args.jobs):
        saved_model, rest = job.rsplit("::", 1)
        mode, out = rest.split("=", 1)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        _configure(converter, tf, mode, representative, args.int8_io)
        if mode == "int8" and args.float_scope and not args.int8_io:
            # int8 I/O feeds the front end 8-bit audio anyway: plain full int8 there.
            data = _selective_int8(tf, saved_model, converter, representative, args.float_scope)
        else:
            data = converter.convert()
        data = shorten_tensor_names(data)
        with open(out, "wb") as fh:
            fh.write(data)
        print(f"done {i}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
