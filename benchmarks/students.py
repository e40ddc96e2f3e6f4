"""Size, compute and Keras CPU latency of every registered student at 1 s and 8 s.

Per student and clip length: parameters of the inference (stripped) model and
of the training model with its attention branch, MACs per inference (counted
analytically from layer shapes, see kws_kd/students/macs.py; FLOPs ~= 2 x MACs),
n', and the median wall time of one clip (batch 1) through the stripped Keras
model compiled with tf.function (the training graph: looped recurrences).
CPU here is shared with other jobs: latencies are noisy, compare them only
within one run. This is Keras on the host, not TFLite on a phone.

With `--train-batch B` it also times one Adam step (cross-entropy + attention
KL) of the training model at batch B.

    python benchmarks/students.py [--seconds 1 8] [--repeats 20] [--train-batch 100] [--threads 2]
                                  [--out benchmarks/results/students.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]


def train_step_ms(model, samples: int, batch: int, steps: int) -> float:
    """Median time of one Adam step on cross-entropy + attention KL (what training runs)."""
    import keras
    import numpy as np
    import tensorflow as tf

    opt = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(-0.5, 0.5, (batch, samples)).astype(np.float32))
    y = tf.constant(rng.integers(0, model.output_shape[0][-1], batch).astype(np.int32))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits, att = model(x, training=True)
            uniform = tf.fill(tf.shape(att), 1.0 / tf.cast(tf.shape(att)[1], tf.float32))
            kl = tf.reduce_sum(att * (tf.math.log(att + 1e-9) - tf.math.log(uniform)), axis=1)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            loss = tf.reduce_mean(0.9 * ce + 0.1 * kl)
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    step().numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(name: str, seconds: float, repeats: int, num_labels: int = 12, train_batch: int = 0, train_steps: int = 3) -> dict:
    import numpy as np
    import tensorflow as tf

    from kws_kd.students import attention_length, build_student, strip
    from kws_kd.students.macs import model_macs

    samples = int(round(seconds * 16000))
    train = build_student(name, num_labels, samples)
    model = strip(train)
    forward = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).uniform(-0.5, 0.5, (1, samples)).astype(np.float32))
    start = time.perf_counter()
    forward(x).numpy()  # trace + first run
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - start)
    macs = model_macs(model)
    train_ms = train_step_ms(train, samples, train_batch, train_steps) if train_batch > 0 else None
    return {
        "name": name,
        "clip_seconds": seconds,
        "params": int(model.count_params()),
        "params_with_attention": int(train.count_params()),
        "macs": macs,
        "flops_approx": 2 * macs,
        "macs_with_attention": model_macs(train),
        "attention_length": attention_length(name, samples),
        "keras_ms_median": 1000 * statistics.median(times),
        "keras_ms_min": 1000 * min(times),
        "first_call_s": first,
        "repeats": repeats,
        "train_batch": train_batch,
        "train_step_ms_median": train_ms,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0, 8.0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--train-batch", type=int, default=0, help="also time an Adam step at this batch (0: skip)")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="TF intra/inter-op threads")
    parser.add_argument("--models", nargs="+", default=None, help="subset of students (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "students.json")
    args = parser.parse_args(argv)

    import tensorflow as tf
    from tqdm import tqdm

    from kws_kd.atomic import atomic_write_text
    from kws_kd.students import STUDENTS

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    names = args.models or list(STUDENTS)
    jobs = [(n, s) for s in args.seconds for n in names]
    rows = [measure(n, s, args.repeats, train_batch=args.train_batch, train_steps=args.train_steps) for n, s in tqdm(jobs, desc="students", file=sys.stderr)]

    header = f"{'student':<10} {'len':>4} {'params':>9} {'+branch':>9} {'MMACs':>8} {'n_prime':>7} {'keras ms (median)':>18} {'train step ms':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<10} {r['clip_seconds']:>3g}s {r['params']:>9,} {r['params_with_attention']:>9,} "
            f"{r['macs'] / 1e6:>8.1f} {r['attention_length']:>7} {r['keras_ms_median']:>18.2f} "
            f"{'-' if r['train_step_ms_median'] is None else format(r['train_step_ms_median'], '.0f'):>13}"
        )
    report = {
        "benchmark": "students",
        "macs_method": "analytical from layer shapes (kws_kd/students/macs.py); FLOPs ~= 2 x MACs",
        "latency_method": "stripped Keras model, tf.function, batch 1, median wall time on shared CPU",
        "threads": args.threads,
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "tensorflow": tf.__version__},
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
