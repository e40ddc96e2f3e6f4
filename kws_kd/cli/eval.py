"""`kws-kd eval`: evaluate a trained run or a .tflite file on the test split."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "eval",
        help="evaluate a trained run or a .tflite file on the test split",
        description=(
            "Accuracy (or mAP for multi-label data), per-class metrics and a confusion-matrix PNG of a run's best "
            "weights, or of a .tflite file exported from it (--tflite), on the same clips."
        ),
    )
    p.add_argument("--run", required=True, help="run folder written by `kws-kd train`")
    p.add_argument("--tflite", help="evaluate this .tflite file (with its sidecar) instead of the Keras weights")
    p.add_argument("--data", help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--split", choices=["train", "validation", "test"], default="test", help="split to evaluate")
    p.add_argument("--batch-size", type=int, default=50, help="evaluation batch size")
    p.add_argument("--max-clips", type=int, help="evaluate only the first N clips of the split")
    p.add_argument("--out-dir", help="where eval_<split>.json and confusion_<split>.png go (default: the run folder)")
    p.add_argument("--attention-in-span", action="store_true",
                   help="also report the student's attention mass inside the keyword span (Keras only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from kws_kd.evaluate import attention_in_span, evaluate_run, format_report
    from kws_kd.run import load_run

    report = evaluate_run(
        args.run, tflite=args.tflite, data=args.data, split=args.split, batch_size=args.batch_size,
        out_dir=args.out_dir, max_clips=args.max_clips,
    )
    print(format_report(report))
    if args.attention_in_span:
        span = attention_in_span(load_run(args.run), args.split, data=args.data, batch_size=args.batch_size, max_clips=args.max_clips)
        print("attention in keyword span: " + json.dumps({k: span[k] for k in ("mass_in_span", "chance", "ratio_to_chance", "peak_in_span", "clips")}))
    return 0
