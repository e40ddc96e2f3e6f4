"""Small helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse

from kws_kd.errors import NotImplementedYet


def add_command(subparsers, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser whose --help shows defaults."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description or help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def not_implemented(feature: str):
    """A handler for a command whose body another issue fills in: fails loudly."""

    def handler(args: argparse.Namespace) -> int:
        raise NotImplementedYet(f"{feature} is not implemented yet")

    return handler
