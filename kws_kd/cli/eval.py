"""`kws-kd eval`: evaluate a trained run or a .tflite file on the test split."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "eval", help="evaluate a trained run or a .tflite file on the test split")
    parser.set_defaults(func=not_implemented("kws-kd eval"))
