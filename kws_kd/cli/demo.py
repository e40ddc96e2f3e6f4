"""`kws-kd demo`: run the whole method end to end on the built-in offline data.

Every flag comes from `kws_kd.demo.DemoOptions` (help, choices, defaults, bounds).
"""

from __future__ import annotations

import argparse
import dataclasses

from kws_kd.cli.common import add_command

#: The experiment options a demo user sets from the command line (the rest keep the demo's defaults).
FLAGS = ("out", "quick", "data", "noise", "shared_data", "seconds", "students", "kd_lambda", "steps", "batch_size",
         "pretrain_steps", "precision", "workers", "seed", "teacher", "train_teacher", "teacher_minutes",
         "rollout_layers", "rollout_mode", "stream_minutes")


def register(subparsers) -> None:
    from kws_kd.demo import DemoOptions
    from kws_kd.options import add_arguments

    p = add_command(
        subparsers,
        "demo",
        help="run the whole method end to end on the built-in offline data",
        description=(
            "Noisy Speech Commands at D s from offline data -> the shipped reference teacher's attention store "
            "-> a vanilla and a distilled student of each kind (both from the same pre-training on clean 1 s "
            "keywords) -> int8 TFLite -> host latency -> one summary table (summary.md/.json) and attention.png "
            "in --out. Stages are cached by a hash of their options: rerunning reuses finished stages and "
            "resumes an interrupted one. With --quick, unset flags take the smoke version's values."
        ),
    )
    add_arguments(p, DemoOptions, only=FLAGS)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from kws_kd.demo import DemoOptions, run_demo
    from kws_kd.options import check

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(DemoOptions) if hasattr(args, f.name)}
    opts = DemoOptions.quick_defaults(**given) if given.get("quick") else DemoOptions(**given)
    run_demo(check(opts))
    return 0
