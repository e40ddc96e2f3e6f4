"""Training throughput per student: the old training path against the new one, in one run.

Two measurements, both interleaved across paths (a burst of load hits every path alike):

1. **Breakdown** (synthetic batches, `tf.function`, median of `--repeats` calls):
   front end (MFCC of B clips), forward, backward (forward+backward minus
   forward), optimizer (applying fixed gradients), each timed on its own, and
   the full step (what the clips/s and speed-ups use; the parts need not sum
   to it exactly). A path with the
   feature cache pays the front end once per clip per run instead of once per
   step: its per-step total leaves it out, and the cache's build rate is shown
   on its own. Clips/s = B / per-step total. Share of peak = (forward +
   backward MACs of the network, 3x its forward MACs, front end excluded) /
   per-step total / `--peak-gmacs` (numpy SGEMM on this machine).
2. **Loop**: the real `kws_kd.train` loop (pipeline, teacher-target join,
   optimizer, validation excluded) on a generated dataset, steps/s and the
   share of time spent waiting for data.

3. **Workers** (`--workers N`): the loop as N concurrent child processes with
   cores / N threads each, as `kws_kd.parallel` trains an experiment's runs;
   aggregate clips/s against the old path's single loop.

Paths (`PATHS`): `old` is the training graph before this benchmark's levers
(matmul-DFT front end in every step, (k, 1) convolutions, Keras's generic RNN
loop, float32); `new` turns on `BuildOptions.fast_graph` (stft front end,
time-on-width convolutions, fused recurrences) and the feature cache;
`new-bf16` adds `--precision mixed_bfloat16`. Single levers are there to see
what each pays.

    python benchmarks/train_throughput.py [--models ...] [--seconds 1 8] [--batch-sizes 32]
        [--paths old new new-bf16] [--repeats 5] [--loop-steps 6] [--workers 2]
        [--out benchmarks/results/train_throughput.json]

Absolute times drift on this shared 2-core machine: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ["lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn"]
NUM_LABELS = 12
PEAK_GMACS = 95.2  # numpy float32 SGEMM, 2 cores (docs/latency.md)


@dataclass(frozen=True)
class TrainPath:
    """One way of running a training step (`kws_kd.train.TrainOptions` fields)."""

    name: str
    fast_graph: bool
    precision: str
    feature_cache: bool


PATHS = {
    p.name: p
    for p in (
        TrainPath("old", False, "float32", False),
        TrainPath("fast-graph", True, "float32", False),
        TrainPath("cache", False, "float32", True),
        TrainPath("new", True, "float32", True),
        TrainPath("new-bf16", True, "mixed_bfloat16", True),
    )
}


def _median_ms(fn, repeats: int) -> float:
    fn()
    fn()  # tracing and first-call allocation excluded
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


class Breakdown:
    """Synthetic-batch timings of one student, one length, one batch size, one path."""

    def __init__(self, model: str, seconds: float, batch: int, path: TrainPath):
        import keras
        import tensorflow as tf

        from kws_kd.students.attention import strip
        from kws_kd.students.base import student_info
        from kws_kd.students.macs import layer_macs, model_macs
        from kws_kd.students.registry import build_student
        from kws_kd.students.registry import get_spec

        samples = int(seconds * 16000)
        build = dict(fast_graph=path.fast_graph, precision=path.precision)
        full = strip(build_student(model, NUM_LABELS, samples, **build, features_input=path.feature_cache))
        self.front_end = student_info(full).layers["mfcc"]
        reference = strip(build_student(model, NUM_LABELS, samples, fast_graph=False))
        self.network_macs = model_macs(reference) - layer_macs(student_info(reference).layers["mfcc"])
        rng = np.random.default_rng(0)
        self.audio = tf.constant(rng.normal(0, 0.1, (batch, samples)).astype(np.float32))
        self.features = tf.function(lambda a: self.front_end(a))(self.audio)
        self.x = self.features if path.feature_cache else self.audio
        self.y = tf.constant(rng.integers(0, NUM_LABELS, batch).astype(np.int32))
        self.model, self.batch, self.path = full, batch, path
        variables = full.trainable_variables
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9) if get_spec(model).default_optimizer == "sgd" else keras.optimizers.Adam(1e-3)
        optimizer.build(variables)

        def loss(x, y):
            logits = tf.cast(full(x, training=True), tf.float32)
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

        @tf.function
        def forward(x, y):
            return loss(x, y)

        @tf.function
        def grads(x, y):
            with tf.GradientTape() as tape:
                value = loss(x, y)
            return tape.gradient(value, variables)

        @tf.function
        def step(x, y):
            g = grads.python_function(x, y)
            optimizer.apply_gradients(zip(g, variables))
            return g[0]

        fixed = [tf.identity(g) for g in grads(self.x, self.y)]

        @tf.function
        def apply():
            optimizer.apply_gradients(zip(fixed, variables))
            return fixed[0]

        self.fns = {
            "front_end": tf.function(lambda a: self.front_end(a)),
            "forward": forward,
            "fwd_bwd": grads,
            "optimizer": apply,
            "step": step,
        }

    def measure(self, repeats: int) -> dict:
        f = self.fns
        front = _median_ms(lambda: f["front_end"](self.audio).numpy(), repeats)
        fwd = _median_ms(lambda: f["forward"](self.x, self.y).numpy(), repeats)
        fwd_bwd = _median_ms(lambda: f["fwd_bwd"](self.x, self.y)[0].numpy(), repeats)
        opt = _median_ms(lambda: f["optimizer"]().numpy(), repeats)
        step = _median_ms(lambda: f["step"](self.x, self.y).numpy(), repeats)
        # In-graph front end: `step` already ran it. Cached: it is paid once per clip, not per step.
        total = step
        if not self.path.feature_cache:
            fwd, fwd_bwd = fwd - front, fwd_bwd - front  # the network's share
        return {
            "front_end_ms": front,
            "front_end_per_step_ms": 0.0 if self.path.feature_cache else front,
            "forward_ms": fwd,
            "backward_ms": fwd_bwd - fwd,
            "optimizer_ms": opt,
            "step_ms": total,
            "clips_per_s": 1000.0 * self.batch / total,
            "peak_share": 3 * self.network_macs * self.batch / (total / 1000.0) / (PEAK_GMACS * 1e9),
            "cache_build_clips_per_s": 1000.0 * self.batch / front if self.path.feature_cache else None,
        }


def make_tone_dataset(folder: Path, seconds: float, train_clips: int, labels: int, seed: int = 0) -> Path:
    """Noise clips with a short tone (label = its frequency) at a random offset: a dataset the loop can read."""
    from kws_kd.audio import write_wav
    from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest

    rng = np.random.default_rng(seed)
    names = [f"tone{i}" for i in range(labels)]
    sr, n = 16000, int(seconds * 16000)
    clips = []
    for split, count in (("train", train_clips), ("validation", 8)):
        for k in range(count):
            li = k % labels
            audio = rng.normal(0, 0.02, n)
            start = rng.uniform(0, seconds - 0.3)
            s0 = int(start * sr)
            audio[s0 : s0 + int(0.3 * sr)] += 0.5 * np.sin(2 * np.pi * (300 + 300 * li) * np.arange(int(0.3 * sr)) / sr)
            path = folder / "data" / f"{split}_{k}.wav"
            write_wav(path, np.clip(audio, -1, 1).astype(np.float32))
            clips.append(ClipRecord(f"{split}/{k}", split, (names[li],), str(path), round(start, 3), round(start + 0.3, 3)))
    write_manifest(Manifest(root=str(folder / "data"), label_names=names, clips=clips, clip_seconds=seconds), folder / "data")
    return folder


def loop_rate(folder: Path, model: str, path: TrainPath, steps: int, batch: int, tag: str) -> dict:
    """The real training loop (`kws-kd train`'s fit) for `steps` steps: median step time, first and last excluded."""
    from kws_kd.train import TrainOptions, train

    stamps: list[float] = []
    opts = TrainOptions(
        model=model, data=str(folder / "data"), out=str(folder / f"run_{model}_{path.name}_{tag}"), steps=steps,
        batch_size=batch, eval_every=steps, seed=0, fast_graph=path.fast_graph, precision=path.precision,
        feature_cache="on" if path.feature_cache else "off",
    )
    stats = train(opts, on_step=lambda s: stamps.append(time.perf_counter()), progress=False, evaluate_test=False)
    step_s = np.diff(stamps)[:-1]
    return {"loop_step_ms": 1000.0 * float(np.median(step_s))}


def parallel_loop_rate(folder: Path, model: str, path: TrainPath, steps: int, batch: int, workers: int) -> dict:
    """`workers` copies of the loop at once, each a child process with cores / workers threads (kws_kd.parallel).

    Aggregate clips/s = workers x B / (median of the children's median step times).
    """
    import subprocess

    from kws_kd.parallel import threads_per_worker

    threads = threads_per_worker(workers)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child-loop", json.dumps(
        {"folder": str(folder), "model": model, "path": path.name, "steps": steps, "batch": batch})]
    procs = [subprocess.Popen(cmd + [f"w{i}"], stdout=subprocess.PIPE, text=True, env=env) for i in range(workers)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    step_ms = float(np.median([r["loop_step_ms"] for r in results]))
    return {"workers": workers, "threads_per_worker": threads, "worker_step_ms": step_ms,
            "aggregate_clips_per_s": 1000.0 * workers * batch / step_ms}


def _child_loop(spec: str, tag: str) -> int:
    d = json.loads(spec)
    r = loop_rate(Path(d["folder"]), d["model"], PATHS[d["path"]], d["steps"], d["batch"], tag)
    print(json.dumps(r))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-loop":
        return _child_loop(argv[1], argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=STUDENTS, choices=STUDENTS)
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 8.0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    ap.add_argument("--paths", nargs="+", default=["old", "new", "new-bf16"], choices=list(PATHS))
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per breakdown measurement")
    ap.add_argument("--loop-steps", type=int, default=6, help="steps of the real loop per path (0: skip the loop)")
    ap.add_argument("--peak-gmacs", type=float, default=PEAK_GMACS)
    ap.add_argument("--workers", type=int, default=0,
                    help="also run the loop as this many concurrent single-core processes and report their "
                         "aggregate clips/s (how kws_kd.parallel trains experiment runs); 0: skip")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_throughput.json"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    paths = [PATHS[p] for p in args.paths]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-kd-train-bench-") as tmp:
        for seconds in args.seconds:
            for batch in args.batch_sizes:
                folder = None
                if args.loop_steps:
                    folder = make_tone_dataset(Path(tmp) / f"d{seconds:g}_{batch}", seconds,
                                               train_clips=batch * args.loop_steps, labels=NUM_LABELS)
                for model in args.models:
                    benches = {p.name: Breakdown(model, seconds, batch, p) for p in paths}
                    results = {p.name: [] for p in paths}
                    for _ in range(2):  # two interleaved rounds
                        for p in paths:
                            results[p.name].append(benches[p.name].measure(args.repeats))
                    for p in paths:
                        r = {k: (float(np.median([x[k] for x in results[p.name]])) if results[p.name][0][k] is not None
                                 else None) for k in results[p.name][0]}
                        if folder is not None:
                            r.update(loop_rate(folder, model, p, args.loop_steps, batch, "r0"))
                            # fit() pulls each batch inside its step function, so the data wait is not
                            # separable there: what the loop spends beyond the bare step is data + callbacks.
                            r["loop_overhead_share"] = max(0.0, r["loop_step_ms"] - r["step_ms"]) / r["loop_step_ms"]
                            if args.workers > 1:
                                r.update(parallel_loop_rate(folder, model, p, args.loop_steps, batch, args.workers))
                        rows.append({"model": model, "seconds": seconds, "batch_size": batch, "path": p.name, **r})
                    base = next(r for r in rows if r["model"] == model and r["seconds"] == seconds
                                and r["batch_size"] == batch and r["path"] == paths[0].name)
                    for r in rows[-len(paths):]:
                        r["speedup"] = base["step_ms"] / r["step_ms"]
                        if "loop_step_ms" in r:
                            r["loop_speedup"] = base["loop_step_ms"] / r["loop_step_ms"]
                        if "aggregate_clips_per_s" in r:
                            r["aggregate_speedup"] = r["aggregate_clips_per_s"] / (1000.0 * batch / base["loop_step_ms"])
                        print(_line(r), flush=True)
                    del benches
    print()
    print(_table(rows))
    meta = {"host": platform.node(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
            "repeats": args.repeats, "loop_steps": args.loop_steps, "peak_gmacs": args.peak_gmacs,
            "load_average": os.getloadavg(),
            "paths": {p.name: p.__dict__ for p in paths},
            "note": "medians of interleaved rounds; first calls (tracing) excluded; shared 2-core CPU"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(_table(rows) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _line(r: dict) -> str:
    loop = f"  loop {r['loop_step_ms']:7.1f} ms (x{r['loop_speedup']:.2f})" if "loop_step_ms" in r else ""
    return (f"{r['model']:10s} {r['seconds']:3g}s B={r['batch_size']:<3d} {r['path']:10s} step {r['step_ms']:7.1f} ms "
            f"(front {r['front_end_per_step_ms']:5.1f} fwd {r['forward_ms']:6.1f} bwd {r['backward_ms']:6.1f} "
            f"opt {r['optimizer_ms']:5.1f})  {r['clips_per_s']:6.1f} clips/s  x{r['speedup']:.2f}  "
            f"{100 * r['peak_share']:4.1f}% of peak{loop}")


def _table(rows: list[dict]) -> str:
    head = ("| student | clip | B | path | front end ms | forward ms | backward ms | optimizer ms | step ms | clips/s "
            "| speed-up | % of peak | loop step ms | loop speed-up | loop overhead (data + callbacks) | workers: clips/s (speed-up) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        loop = (f"{r['loop_step_ms']:.1f} | x{r['loop_speedup']:.2f} | {100 * r['loop_overhead_share']:.1f} %"
                if "loop_step_ms" in r else "- | - | -")
        loop += (f" | {r['workers']}x{r['threads_per_worker']}: {r['aggregate_clips_per_s']:.1f} "
                 f"(x{r['aggregate_speedup']:.2f})" if "aggregate_clips_per_s" in r else " | -")
        lines.append(
            f"| {r['model']} | {r['seconds']:g} s | {r['batch_size']} | {r['path']} | {r['front_end_per_step_ms']:.1f} "
            f"| {r['forward_ms']:.1f} | {r['backward_ms']:.1f} | {r['optimizer_ms']:.1f} | {r['step_ms']:.1f} "
            f"| {r['clips_per_s']:.1f} | x{r['speedup']:.2f} | {100 * r['peak_share']:.1f} | {loop} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
