"""`kws-kd eval`: evaluate a trained run or a .tflite file on the test split, or detection on a long stream."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command
from kws_kd.errors import KwsKdError


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "eval",
        help="evaluate a trained run or a .tflite file on the test split, or keyword detection on a long stream",
        description=(
            "Accuracy (or mAP for multi-label data), per-class metrics and a confusion-matrix PNG of a run's best "
            "weights, or of a .tflite file exported from it (--tflite), on the same clips. "
            "With --stream STREAM_DIR (from `kws-kd data stream`): keyword detection over the long audio, as an app "
            "runs it, for each --tflite file and --run: false rejection rate against false alarms per hour over a "
            "threshold sweep, a DET curve PNG, the operating points at 0.5 and 1 FA/h, per-keyword figures and the "
            "real-time factor (docs/streaming_eval.md)."
        ),
    )
    p.add_argument("--run", action="append", default=[],
                   help="run folder written by `kws-kd train` (with --stream: repeatable, one curve each)")
    p.add_argument("--tflite", action="append", default=[],
                   help="evaluate this .tflite file (with its sidecar) instead of the Keras weights "
                        "(with --stream: repeatable, one curve each; needs no --run)")
    p.add_argument("--data", help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--split", choices=["train", "validation", "test"], default="test", help="split to evaluate")
    p.add_argument("--batch-size", type=int, default=50, help="evaluation batch size (with --stream: Keras windows per batch)")
    p.add_argument("--max-clips", type=int, help="evaluate only the first N clips of the split")
    p.add_argument("--out-dir", help="where the outputs go (default: the run folder; with --stream: beside the first "
                                     "--tflite file, else the first run folder)")
    p.add_argument("--attention-in-span", action="store_true",
                   help="also report the student's attention mass inside the keyword span (Keras only)")
    s = p.add_argument_group("long-stream detection (--stream)")
    s.add_argument("--stream", metavar="STREAM_DIR", help="stream folder (WAVs + labels.csv) from `kws-kd data stream`")
    s.add_argument("--hop", type=int, default=100, metavar="MS",
                   help="sliding-window hop of whole-clip models (streaming files always step 20 ms)")
    s.add_argument("--average-window-ms", type=float, default=500.0,
                   help="posteriors are averaged over this many ms of hops (RecognizeCommands: 500)")
    s.add_argument("--suppression-ms", type=float, default=500.0,
                   help="no new announcement this long after one (RecognizeCommands: 500)")
    s.add_argument("--tolerance-ms", type=float, default=1500.0,
                   help="an announcement matches a keyword within this of its span (test_streaming_accuracy: 1500)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.stream:
        return _stream(args)
    if len(args.run) != 1 or len(args.tflite) > 1:
        raise KwsKdError("kws-kd eval takes one --run (and at most one --tflite); several models need --stream")
    import json

    from kws_kd.evaluate import attention_in_span, evaluate_run, format_report
    from kws_kd.run import load_run

    run_dir, tflite = args.run[0], (args.tflite[0] if args.tflite else None)
    report = evaluate_run(
        run_dir, tflite=tflite, data=args.data, split=args.split, batch_size=args.batch_size,
        out_dir=args.out_dir, max_clips=args.max_clips,
    )
    print(format_report(report))
    if args.attention_in_span:
        span = attention_in_span(load_run(run_dir), args.split, data=args.data, batch_size=args.batch_size, max_clips=args.max_clips)
        print("attention in keyword span: " + json.dumps({k: span[k] for k in ("mass_in_span", "chance", "ratio_to_chance", "peak_in_span", "clips")}))
    return 0


def _stream(args: argparse.Namespace) -> int:
    from kws_kd.data.stream_folder import read_stream
    from kws_kd.stream_eval import evaluate_stream, format_stream_report
    from kws_kd.stream_scorers import keras_scorer, tflite_scorer

    if args.attention_in_span or args.max_clips is not None or args.data:
        raise KwsKdError("--stream evaluates whole stream files: --attention-in-span, --max-clips and --data do not apply")
    if not args.tflite and not args.run:
        raise KwsKdError("--stream needs at least one model: --tflite FILE or --run RUN")
    if args.hop <= 0 or args.batch_size <= 0:
        raise KwsKdError(f"--hop and --batch-size must be positive (got {args.hop}, {args.batch_size})")
    stream = read_stream(args.stream)  # validated before any model is loaded
    scorers = [tflite_scorer(t, hop_ms=args.hop, average_window_ms=args.average_window_ms) for t in args.tflite]
    scorers += [keras_scorer(r, hop_ms=args.hop, average_window_ms=args.average_window_ms, batch_size=args.batch_size)
                for r in args.run]
    report = evaluate_stream(args.stream, scorers, out_dir=args.out_dir, suppression_ms=args.suppression_ms,
                             tolerance_ms=args.tolerance_ms, stream=stream)
    print(format_stream_report(report))
    return 0
