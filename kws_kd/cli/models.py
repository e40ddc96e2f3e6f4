"""`kws-kd models`: list the registered students (parameters, attention length)."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "models", help="list the registered students (parameters, attention length)")
    parser.set_defaults(func=not_implemented("kws-kd models"))
