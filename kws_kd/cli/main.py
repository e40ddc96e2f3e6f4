"""Entry point of `kws-kd`.

Each subcommand lives in its own module `kws_kd.cli.<name>` exposing
`register(subparsers)`. Modules import heavy libraries (TensorFlow, torch) only
inside their handlers, so `kws-kd --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from kws_kd import __version__
from kws_kd.errors import KwsKdError

# Order is the order shown by `kws-kd --help`.
SUBCOMMAND_MODULES = (
    "data",
    "teacher",
    "models",
    "train",
    "eval",
    "export",
    "bench",
    "plot_attention",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kws-kd",
        description=(
            "Temporal knowledge distillation from a wav2vec 2.0 teacher into small "
            "keyword-spotting / audio-event students, exported as quantized TFLite."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kws-kd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"kws_kd.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except KwsKdError as exc:
        print(f"kws-kd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kws-kd {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
