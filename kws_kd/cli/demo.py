"""`kws-kd demo`: run the whole method end to end on the built-in offline data."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "demo", help="run the whole method end to end on the built-in offline data")
    parser.set_defaults(func=not_implemented("kws-kd demo"))
