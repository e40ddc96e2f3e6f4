"""`kws-kd plot-attention`: plot teacher rollout and student attention for a clip (paper Fig. 2)."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "plot-attention",
        help="plot teacher rollout and student attention for a clip (paper Fig. 2)",
        description="Teacher rollout and each run's student attention a_S over time for one clip, keyword span shaded; a PNG.",
    )
    p.add_argument("--run", action="append", required=True, help="run folder (repeat for several students)")
    p.add_argument("--teacher-store", required=True, help="teacher attention store")
    p.add_argument("--clip-id", required=True, help="clip id (as in the dataset manifest)")
    p.add_argument("--data", help="dataset folder (default: the first run's)")
    p.add_argument("--out", required=True, help="output PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kws_kd.plot_attention import plot_attention

    path = plot_attention(args.run, args.teacher_store, args.clip_id, args.out, data=args.data)
    print(f"wrote {path}")
    return 0
