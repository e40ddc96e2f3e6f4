"""`kws-kd teacher finetune`: train the wav2vec 2.0 teacher (torch, `export/finetune.py`).

`kws_kd/cli/teacher.py` calls `register_finetune(teacher_subparsers)`. The
handler runs torch in a child process (`export.command`), so no kws-kd process
ever imports it.
"""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command


def register_finetune(sub) -> argparse.ArgumentParser:
    p = add_command(
        sub,
        "finetune",
        help="fine-tune the wav2vec 2.0 teacher (or train a small one from scratch); resumable",
        description=(
            "Fine-tune a wav2vec 2.0 classifier (Linear head on c_1) with the paper's recipe. Re-running the same "
            "command with the same --out resumes. Multi-GPU: `accelerate launch -m kws_kd.cli.main teacher finetune ...`. "
            "The staged curriculum (clean 1 s, then 2/4/8 s mixtures, each stage --init-from the previous best, "
            "then shipping) is `python -m export.ship_teacher --recipe curriculum --data DIR --work DIR`."
        ),
    )
    p.add_argument("--data", required=True, help="dataset folder (any layout kws-kd reads)")
    p.add_argument("--out", required=True, help="run folder: best/, last/, state/, metrics.csv, test_metrics.json")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", default=None,
                     help="named config, random init: tiny | small-cpu | small-cpu-fast | xlsr-300m-shape "
                          "(default small-cpu)")
    src.add_argument("--checkpoint", default=None,
                     help="local Hugging Face wav2vec 2.0 folder (e.g. a downloaded XLSR) or a kws-kd teacher folder")
    p.add_argument("--init-from", default=None, metavar="TEACHER_DIR",
                   help="start from this kws-kd teacher folder's weights; it must have the --config's shape and the "
                        "data's labels (checked before anything is written)")
    p.add_argument("--pooling", choices=("first", "mean"), default="first", help="head input: c_1 (paper) or masked mean")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="default 5e-4 single-label, 2e-5 multi-label")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=20000, help="also the length of the cosine decay")
    p.add_argument("--max-minutes", type=float, default=None, help="stop gracefully after this much wall time")
    p.add_argument("--clip-seconds", type=float, nargs="+", default=None,
                   help="training clip length(s); one is drawn per step (default: the dataset's clip length)")
    p.add_argument("--clip-weights", type=float, nargs="+", default=None, help="sampling weights of --clip-seconds")
    p.add_argument("--val-seconds", type=float, default=None,
                   help="validation/test clip length (default 8 with --fresh-mix, else the dataset's)")
    p.add_argument("--fresh-mix", action="store_true",
                   help="re-mix each keyword into a new noise crop at a new random offset at every draw")
    p.add_argument("--noise", default=None,
                   help="noise folder for --fresh-mix (default: the dataset's noise, else babble from each split's talkers)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validations")
    p.add_argument("--eval-clips", type=int, default=300, help="validation clips per evaluation (0 = all)")
    p.add_argument("--save-every", type=int, default=100, help="steps between resume-state saves")
    p.add_argument("--specaugment-p", type=float, default=0.75, help="probability of the two 10%% feature masks")
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU (intra-op) threads")
    p.add_argument("--interop-threads", type=int, default=None, help="torch inter-op threads")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="forward pass precision: bfloat16 = torch.autocast (loss, validation and test stay float32)")
    p.add_argument("--attention-dropout", type=float, default=None,
                   help="override the config's attention dropout (0 saves the dropout masks' cost)")
    p.add_argument("--log-every-s", type=float, default=60.0,
                   help="off a terminal: one progress line every this many seconds (0 = only validation lines)")
    p.add_argument("--no-test", action="store_true", help="skip the final test-split evaluation")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_finetune)
    return p


def run_finetune(args: argparse.Namespace) -> int:
    from kws_kd.child import run_teacher_command

    return run_teacher_command("finetune", {
        "data": args.data, "out": args.out, "config": args.config, "checkpoint": args.checkpoint,
        "pooling": args.pooling, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup_steps, "max_steps": args.max_steps, "max_minutes": args.max_minutes,
        "clip_seconds": args.clip_seconds or None, "clip_weights": args.clip_weights or None,
        "val_seconds": args.val_seconds, "fresh_mix": args.fresh_mix, "noise": args.noise,
        "eval_every": args.eval_every, "eval_clips": args.eval_clips or None, "save_every": args.save_every,
        "specaugment_p": args.specaugment_p, "grad_clip": args.grad_clip, "seed": args.seed,
        "threads": args.threads, "interop_threads": args.interop_threads, "precision": args.precision,
        "init_from": args.init_from, "attention_dropout": args.attention_dropout, "log_every_s": args.log_every_s,
        "progress": not args.no_progress, "test": not args.no_test,
    })
