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

        def gen():
            for row in representative:
                yield [row[None, ...].astype("float32")]

        converter.representative_dataset = gen
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kws_kd.tflite._child")
    parser.add_argument("jobs", nargs="+", help="SAVED_MODEL::MODE=OUT.tflite")
    parser.add_argument("--representative")
    parser.add_argument("--int8-io", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    representative = np.load(args.representative) if args.representative else None
    for i, job in enumerate(args.jobs):
        saved_model, rest = job.rsplit("::", 1)
        mode, out = rest.split("=", 1)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        _configure(converter, tf, mode, representative, args.int8_io)
        data = converter.convert()
        with open(out, "wb") as fh:
            fh.write(data)
        print(f"done {i}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
