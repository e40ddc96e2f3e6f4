"""The options of one training run: `kws-kd train`'s flags and the fields of a run's config.json.

`TrainOptions` is the one definition (help, choices, defaults, bounds) that
`kws_kd.cli.train` turns into flags (`kws_kd.options.add_arguments`) and that
`kws_kd.run.RunConfig` extends with what `prepare` resolves (labels, paths,
hashes). The experiment stages reuse its fields (`kws_kd.options.like`).
TensorFlow-free, so `--help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kws_kd.feature_cache import MAX_CACHE_BYTES
from kws_kd.graph_options import Precision
from kws_kd.options import option

KlDirection = Literal["student_teacher", "teacher_student"]
Interpolation = Literal["linear", "area"]
#: What to do with the teacher's frame 0 before interpolation (`kws_kd.distill.fix_first_frame`).
FirstFrame = Literal["neighbour", "keep"]
Optimizer = Literal["adam", "sgd"]
LrSchedule = Literal["piecewise", "exponential"]
Distribute = Literal["none", "mirrored", "multi_worker"]
#: "auto" caches MFCCs when the splits fit in `kws_kd.feature_cache.MAX_CACHE_BYTES`.
FeatureCacheMode = Literal["auto", "on", "off"]

#: The paper's / kws_streaming's schedules (the defaults of `learning_rates` per optimizer).
DEFAULT_LEARNING_RATES = {"adam": [0.001, 0.0005, 0.0001, 0.00002], "sgd": [0.1, 0.01]}


@dataclass
class TrainOptions:
    """What `kws-kd train` is asked for. Defaults are the paper's recipe (FACTS §1, §4)."""

    model: str = option(help="student name (see `kws-kd models`)")
    data: str = option(help="dataset folder (anything `kws-kd data check` accepts)")
    out: str = option(help="run folder to create or resume", in_config=False)
    teacher_store: str | None = option(None, "teacher attention store (needed for --kd-lambda > 0 or --logit-kd-beta > 0)")
    kd_lambda: float = option(0.0, "weight λ of the attention KL term; L = λ KL + (1 - λ) L_cls (0 = vanilla)",
                              minimum=0.0, maximum=1.0)
    kl_direction: KlDirection = option("student_teacher", "KL(a_S||a_T) as in the paper, or KL(a_T||a_S)")
    interpolation: Interpolation = option("linear", "how teacher frames are resampled to the student's n' steps")
    teacher_first_frame: FirstFrame = option(
        "neighbour", "neighbour: replace the teacher's frame 0 (c_1's self-share from the rollout's identity term) "
                     "by frame 1 before interpolation; keep: use it as stored")
    logit_kd_beta: float = option(0.0, "weight of Hinton logit KD from the stored teacher logits (added term)",
                                  minimum=0.0)
    logit_kd_temperature: float = option(1.0, "temperature T of logit KD", above=0.0)
    steps: int = option(20000, "training steps", minimum=1)
    batch_size: int = option(100, "global batch size", minimum=1)
    eval_every: int = option(400, "validate (and checkpoint) every N steps", minimum=1)
    clip_seconds: float | None = option(None, "clip length (default: the dataset's, else 1 s)", above=0.0)
    seed: int = option(0, "seed of initialisation, data order and augmentation")
    optimizer: Optimizer | None = option(None, "default: the student's (SGD momentum 0.9 for tc_resnet, else Adam)")
    lr_schedule: LrSchedule = option("piecewise", "piecewise: equal segments of --learning-rates; "
                                                  "exponential: from the first to the last")
    learning_rates: list[float] | None = option(
        None, "learning rates, comma- or space-separated (default: adam 0.001,0.0005,0.0001,0.00002; "
              "sgd 0.1,0.01)", above=0.0)
    spec_augment: bool = option(True, "SpecAugment (2 time masks <= 10 frames, 2 frequency masks <= 5 bins)",
                                off_flag="--no-spec-augment")
    student_config: dict = option({}, "student config overrides as JSON, e.g. '{\"dropout\": 0.1}'")
    distribute: Distribute = option("none", "tf.distribute strategy (multi_worker reads TF_CONFIG)")
    init_from: str | None = option(None, "start from another run's best weights (a run folder) or a run's "
                                         ".weights.h5: the same student, labels and architecture, any clip "
                                         "length (warm start / curriculum)", metavar="RUN_OR_WEIGHTS")
    precision: Precision = option("float32", "training graph precision: mixed_bfloat16 runs matmuls and "
                                             "convolutions in bfloat16 (AMX / AVX512-BF16 CPUs) with float32 "
                                             "weights, front end, attention and logits")
    fast_graph: bool = option(True, "train with the export graph's forms (matmul DFT, (k,1) convolutions, Keras "
                                    "RNN loop) instead of the faster training forms; same weights and maths",
                              off_flag="--plain-graph")
    feature_cache: FeatureCacheMode = option("auto", "compute each clip's MFCCs once instead of at every step "
                                                     f"(auto: when they fit in {MAX_CACHE_BYTES >> 30} GiB)")
