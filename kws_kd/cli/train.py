"""`kws-kd train`: train a student, optionally distilling the teacher's temporal attention."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", help="train a student, optionally distilling the teacher's temporal attention")
    parser.set_defaults(func=not_implemented("kws-kd train"))
