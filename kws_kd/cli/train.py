"""`kws-kd train`: train a student, optionally distilling the teacher's temporal attention.

Every flag comes from `kws_kd.train_options.TrainOptions` (help, choices, defaults, bounds).
"""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command
from kws_kd.options import add_arguments, from_namespace
from kws_kd.train_options import TrainOptions


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "train",
        help="train a student, optionally distilling the teacher's temporal attention",
        description=(
            "Train a student on a dataset; with --kd-lambda > 0 also align its attention with the teacher's "
            "stored rollout (L = lambda*KL(a_S||a_T) + (1-lambda)*L_cls). Defaults are the paper's recipe. "
            "Rerun the same command on the same --out to resume after an interruption."
        ),
    )
    add_arguments(p, TrainOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kws_kd.train import train

    train(from_namespace(TrainOptions, args))
    return 0
