"""`kws-kd export`: strip the attention branch and export a student to TFLite."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "export", help="strip the attention branch and export a student to TFLite")
    parser.set_defaults(func=not_implemented("kws-kd export"))
