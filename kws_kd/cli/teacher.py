"""`kws-kd teacher`: fine-tune the wav2vec 2.0 teacher, export its attention store, roll out saved maps.

Subcommands:
  finetune  (kws_kd/cli/teacher_finetune.py)  train the teacher
  export    run the teacher over a dataset and write the teacher attention store
  rollout   attention rollout of saved maps (.npy), without torch
"""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command

SPLIT_CHOICES = ("train", "validation", "test")


def register(subparsers) -> None:
    parser = add_command(subparsers, "teacher", help="fine-tune the wav2vec 2.0 teacher and export its attention store")
    sub = parser.add_subparsers(dest="teacher_command", metavar="SUBCOMMAND", required=True)
    _register_finetune(sub)
    _register_export(sub)
    _register_rollout(sub)


def _register_finetune(sub) -> None:
    try:
        from kws_kd.cli.teacher_finetune import register_finetune
    except ImportError:  # part 1 of the teacher issue not in this checkout yet
        from kws_kd.cli.common import not_implemented

        p = add_command(sub, "finetune", help="fine-tune the wav2vec 2.0 teacher (not available in this checkout)")
        p.set_defaults(func=not_implemented("kws-kd teacher finetune"))
        return
    register_finetune(sub)


def add_rollout_options(parser: argparse.ArgumentParser) -> None:
    """Options that pick the attention target (defaults: the paper's full rollout)."""
    g = parser.add_argument_group("rollout target (default: the paper's full rollout)")
    g.add_argument(
        "--layers",
        default="all",
        help="layers taking part: 'all', 'topK' (e.g. 'top2'), an index ('5'), a python slice ('2:4'; write "
        "'--layers=-2:' for negative values) or a list ('0,3')",
    )
    g.add_argument(
        "--mode",
        choices=("rollout", "last_layer"),
        default="rollout",
        help="'rollout' chains the selected layers; 'last_layer' takes the raw row 0 of the last selected layer",
    )
    g.add_argument("--residual-weight", type=float, default=0.5, help="w in B = (1 - w) * A + w * I")
    g.add_argument("--head-fusion", choices=("mean", "max"), default="mean", help="how the heads of a layer are fused")


def rollout_options_from_args(args: argparse.Namespace):
    from kws_kd.rollout import RolloutOptions

    return RolloutOptions(
        layers=args.layers, residual_weight=args.residual_weight, head_fusion=args.head_fusion, mode=args.mode
    )


def _register_export(sub) -> None:
    p = add_command(
        sub,
        "export",
        help="run the teacher over a dataset and write the teacher attention store",
        description=(
            "Run the teacher (eval mode, eager attention, batched) over the dataset's clips and write, per clip, "
            "the attention rollout's row-0 vector and the teacher's logits into STORE (see docs/teacher_store.md). "
            "With --num-shards N --shard-index i only the clips whose id hashes to shard i are exported, into "
            "their own shard file; run all N (e.g. as a job array) and readers merge them."
        ),
    )
    p.add_argument("--teacher", required=True, help="teacher folder written by `kws-kd teacher finetune`")
    p.add_argument("--data", required=True, help="dataset folder (any layout `kws-kd data` understands)")
    p.add_argument("--out", required=True, help="store folder (created, or added to if made for the same data/teacher)")
    p.add_argument("--splits", nargs="+", choices=SPLIT_CHOICES, default=list(SPLIT_CHOICES), help="splits to export")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (memory grows with it)")
    p.add_argument("--num-shards", type=int, default=1, help="split the export into N shard files")
    p.add_argument("--shard-index", type=int, default=0, help="which shard this process writes (0-based)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_rollout_options(p)
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    """Torch runs in a child process (`export.command`): this one never imports it."""
    from dataclasses import asdict

    from kws_kd.child import run_teacher_command

    rollout = rollout_options_from_args(args)  # bad rollout options fail here, before torch starts
    return run_teacher_command("export", {
        "teacher": args.teacher, "data": args.data, "out": args.out, "splits": args.splits,
        "batch_size": args.batch_size, "num_shards": args.num_shards, "shard_index": args.shard_index,
        "rollout": asdict(rollout), "device": args.device, "progress": not args.no_progress,
    })


def _register_rollout(sub) -> None:
    p = add_command(
        sub,
        "rollout",
        help="attention rollout of saved attention maps (.npy), without torch",
        description=(
            "Read MAPS.npy, post-softmax attention maps [layers, heads, T, T] or [batch, layers, heads, T, T] "
            "from any transformer, and write the row-0 rollout vector(s) [T] or [batch, T] as .npy."
        ),
    )
    p.add_argument("--attentions", required=True, help="MAPS.npy: [layers, heads, T, T] or [batch, layers, heads, T, T]")
    p.add_argument("--mask", default=None, help="MASK.npy: [T] or [batch, T], nonzero on real (unpadded) frames")
    p.add_argument("--out", required=True, help="ROLLOUT.npy to write")
    add_rollout_options(p)
    p.set_defaults(func=_run_rollout)


def _run_rollout(args: argparse.Namespace) -> int:
    from kws_kd.rollout import rollout_files

    shape = rollout_files(args.attentions, args.out, mask_path=args.mask, options=rollout_options_from_args(args))
    print(f"wrote rollout {list(shape)} to {args.out}")
    return 0
