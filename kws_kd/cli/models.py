"""`kws-kd models`: list the registered students (parameters, attention length)."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "models",
        help="list the registered students (parameters, attention length)",
        description=(
            "List every registered student: parameter count of the training model (with the "
            "attention branch) and of the stripped inference model, and the attention length n' "
            "for the given clip length."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="clip length in seconds")
    parser.add_argument("--num-labels", type=int, default=12, help="number of output labels")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kws_kd.students.table import format_json, format_table, models_table

    rows = models_table(args.clip_seconds, args.num_labels)
    print(format_json(rows) if args.json else format_table(rows))
    return 0
