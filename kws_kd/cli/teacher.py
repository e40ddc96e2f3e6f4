"""`kws-kd teacher`: fine-tune the wav2vec 2.0 teacher and export its attention store."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "teacher", help="fine-tune the wav2vec 2.0 teacher and export its attention store")
    parser.set_defaults(func=not_implemented("kws-kd teacher"))
