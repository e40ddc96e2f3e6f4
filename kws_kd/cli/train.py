"""`kws-kd train`: train a student, optionally distilling the teacher's temporal attention."""

from __future__ import annotations

import argparse

from kws_kd.cli.common import add_command
from kws_kd.feature_cache import FEATURE_CACHE_MODES, MAX_CACHE_BYTES
from kws_kd.graph_options import PRECISIONS


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


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
    p.add_argument("--model", required=True, help="student name (see `kws-kd models`)")
    p.add_argument("--data", required=True, help="dataset folder (anything `kws-kd data check` accepts)")
    p.add_argument("--out", required=True, help="run folder to create or resume")
    p.add_argument("--teacher-store", help="teacher attention store (needed for --kd-lambda > 0 or --logit-kd-beta > 0)")
    p.add_argument("--kd-lambda", type=float, default=0.0, help="weight of the attention KL term (0 = vanilla)")
    p.add_argument("--kl-direction", choices=["student_teacher", "teacher_student"], default="student_teacher",
                   help="KL(a_S||a_T) as in the paper, or KL(a_T||a_S)")
    p.add_argument("--interpolation", choices=["linear", "area"], default="linear",
                   help="how teacher frames are resampled to the student's n' steps")
    p.add_argument("--teacher-first-frame", choices=["neighbour", "keep"], default="neighbour",
                   help="neighbour: replace the teacher's frame 0 (c_1's self-share from the rollout's identity "
                        "term) by frame 1 before interpolation; keep: use it as stored")
    p.add_argument("--logit-kd-beta", type=float, default=0.0, help="weight of Hinton logit KD from the stored teacher logits")
    p.add_argument("--logit-kd-temperature", type=float, default=1.0, help="temperature T of logit KD")
    p.add_argument("--steps", type=int, default=20000, help="training steps")
    p.add_argument("--batch-size", type=int, default=100, help="global batch size")
    p.add_argument("--eval-every", type=int, default=400, help="validate (and checkpoint) every N steps")
    p.add_argument("--clip-seconds", type=float, help="clip length (default: the dataset's, else 1 s)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and augmentation")
    p.add_argument("--optimizer", choices=["adam", "sgd"], help="default: sgd (momentum 0.9) for tc_resnet, else adam")
    p.add_argument("--lr-schedule", choices=["piecewise", "exponential"], default="piecewise",
                   help="piecewise: equal segments of --learning-rates; exponential: first to last")
    p.add_argument("--learning-rates", type=_floats,
                   help="comma list (default adam 0.001,0.0005,0.0001,0.00002; sgd 0.1,0.01)")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false", help="turn SpecAugment off")
    p.add_argument("--distribute", choices=["none", "mirrored", "multi_worker"], default="none",
                   help="tf.distribute strategy (multi_worker reads TF_CONFIG)")
    p.add_argument("--init-from", metavar="RUN_OR_WEIGHTS",
                   help="start from another run's best weights (a run folder) or a run's .weights.h5: the same "
                        "student, labels and architecture, any clip length (warm start / curriculum)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="float32",
                   help="training graph precision: mixed_bfloat16 runs matmuls and convolutions in bfloat16 "
                        "(AMX / AVX512-BF16 CPUs) with float32 weights, front end, attention and logits")
    p.add_argument("--plain-graph", dest="fast_graph", action="store_false", default=argparse.SUPPRESS,
                   help="train with the export graph's forms (matmul DFT, (k,1) convolutions, Keras RNN loop) "
                        "instead of the faster training forms; same weights and maths")
    p.add_argument("--feature-cache", choices=list(FEATURE_CACHE_MODES), default="auto",
                   help="compute each clip's MFCCs once instead of at every step (auto: when they fit in "
                        f"{MAX_CACHE_BYTES >> 30} GiB)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kws_kd.train import TrainOptions, train

    opts = TrainOptions(
        model=args.model,
        data=args.data,
        out=args.out,
        teacher_store=args.teacher_store,
        kd_lambda=args.kd_lambda,
        kl_direction=args.kl_direction,
        interpolation=args.interpolation,
        teacher_first_frame=args.teacher_first_frame,
        logit_kd_beta=args.logit_kd_beta,
        logit_kd_temperature=args.logit_kd_temperature,
        steps=args.steps,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        clip_seconds=args.clip_seconds,
        seed=args.seed,
        optimizer=args.optimizer,
        lr_schedule=args.lr_schedule,
        learning_rates=args.learning_rates,
        spec_augment=args.spec_augment,
        distribute=args.distribute,
        init_from=args.init_from,
        precision=args.precision,
        fast_graph=getattr(args, "fast_graph", True),  # --plain-graph sets it; its default is hidden from --help
        feature_cache=args.feature_cache,
    )
    train(opts)
    return 0
