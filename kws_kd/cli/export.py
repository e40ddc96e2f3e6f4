"""`kws-kd export --tflite`: strip the attention branch and export a student to TFLite."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command
from kws_kd.tflite import MODES

#: Output formats `kws-kd export` writes (`--tflite` is the documented spelling of `--format tflite`).
FORMATS = ("tflite",)


def register(subparsers) -> None:
    parser = add_command(subparsers, "export", help="strip the attention branch and export a student to TFLite")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=FORMATS, default="tflite", help="output format (default: tflite, the only one)")
    fmt.add_argument("--tflite", dest="format", action="store_const", const="tflite",
                     help="same as --format tflite (optional: it is the default)")
    parser.add_argument("--run", required=True, help="run folder written by kws-kd train")
    parser.add_argument("--quantize", choices=MODES, default="float32", help="weights/activations precision")
    parser.add_argument("--clip-seconds", type=float, default=None, help="input length (default: the run's)")
    parser.add_argument("--streaming", action="store_true", help="one 20 ms frame per call with external state")
    parser.add_argument(
        "--int8-io", action="store_true", help="with --quantize int8: int8 input/output too (8-bit audio)"
    )
    parser.add_argument("--data", default=None, help="dataset for calibration/check (default: the run's)")
    parser.add_argument("--calibration-clips", type=int, default=200, help="int8 representative set size")
    parser.add_argument("--verify-clips", type=int, default=200, help="held-out clips for the Keras check")
    parser.add_argument("--out", required=True, help="output FILE.tflite (sidecar FILE.json beside it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kws_kd.tflite.export import export_run

    export_run(
        args.run,
        args.out,
        quantize=args.quantize,
        clip_seconds=args.clip_seconds,
        streaming=args.streaming,
        int8_io=args.int8_io,
        data=args.data,
        calibration_clips=args.calibration_clips,
        verify_clips=args.verify_clips,
    )
    return 0
