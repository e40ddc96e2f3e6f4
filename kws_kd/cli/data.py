"""`kws-kd data`: build and check datasets (offline synth, Noisy Speech Commands)."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "data", help="build and check datasets (offline synth, Noisy Speech Commands)")
    parser.set_defaults(func=not_implemented("kws-kd data"))
