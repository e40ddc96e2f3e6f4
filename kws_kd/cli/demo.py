"""`kws-kd demo`: run the whole method end to end on the built-in offline data."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    from kws_kd.demo import DemoOptions
    from kws_kd.experiment import DATA_SOURCES

    d = DemoOptions()
    p = add_command(
        subparsers,
        "demo",
        help="run the whole method end to end on the built-in offline data",
        description=(
            "Noisy Speech Commands at D s from offline data -> the shipped reference teacher's attention store "
            "-> a vanilla and a distilled student of each kind -> int8 TFLite -> host latency -> one summary "
            "table (summary.md/.json) and attention.png in --out. Stages are cached by a hash of their options: "
            "rerunning reuses finished stages and resumes an interrupted one."
        ),
    )
    p.add_argument("--out", default=d.out, help="folder for everything the demo makes")
    p.add_argument("--quick", action="store_true", help="<= 3-minute smoke version (tiny data, 2 s clips, TC-ResNet, few steps)")
    p.add_argument("--data", default=d.data,
                   help=f"keyword source: {'|'.join(DATA_SOURCES)} (auto: the shared real Speech Commands subset if "
                        "found, else espeak-ng synth), or a Speech Commands folder")
    p.add_argument("--noise", default=None, help="folder of long speech-noise WAVs (default: babble from the data's talkers)")
    p.add_argument("--shared-data", default=None, help="folder holding speech_commands_v0.02_test_subset/ (default: ../shared/data)")
    p.add_argument("--seconds", type=float, default=None, help=f"clip length D (default {d.seconds:g}; --quick: 2)")
    p.add_argument("--students", nargs="+", default=None,
                   help=f"students to train (see `kws-kd models`; default {' '.join(d.students)}; --quick: tc_resnet)")
    p.add_argument("--kd-lambda", type=float, default=d.kd_lambda, help="lambda of the distilled students")
    p.add_argument("--steps", type=int, default=None, help=f"training steps per student (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=None, help=f"batch size (default {d.batch_size})")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help=f"steps on the clean 1 s keywords that both twins of a student start from; 0: from scratch "
                        f"(default {d.pretrain_steps})")
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default=None,
                   help=f"training graph precision (default {d.precision})")
    p.add_argument("--workers", type=int, default=d.workers, help="training runs side by side, one core each")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of data, initialisation and order")
    p.add_argument("--teacher", default=None, help="teacher folder (default: the shipped export/reference_teacher)")
    p.add_argument("--train-teacher", action="store_true", help="fine-tune the small teacher from scratch first")
    p.add_argument("--teacher-minutes", type=float, default=d.teacher_minutes, help="time budget of --train-teacher")
    p.add_argument("--rollout-layers", default=d.rollout_layers,
                   help="teacher layers in the target ('all' is the paper's full rollout; see `kws-kd teacher export`)")
    p.add_argument("--rollout-mode", choices=("rollout", "last_layer"), default=d.rollout_mode, help="teacher target")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from kws_kd.demo import DemoOptions, run_demo

    explicit = {
        k: v
        for k, v in {"seconds": args.seconds, "steps": args.steps, "batch_size": args.batch_size,
                     "pretrain_steps": args.pretrain_steps, "precision": args.precision,
                     "students": tuple(args.students) if args.students else None}.items()
        if v is not None
    }
    common = dict(
        out=args.out, data=args.data, noise=args.noise, shared_data=args.shared_data,
        kd_lambda=args.kd_lambda, seed=args.seed, teacher=args.teacher, train_teacher=args.train_teacher,
        teacher_minutes=args.teacher_minutes, rollout_layers=args.rollout_layers, rollout_mode=args.rollout_mode,
        workers=args.workers,
        **explicit,
    )
    opts = DemoOptions.quick_defaults(**common) if args.quick else DemoOptions(**common)
    run_demo(opts)
    return 0
