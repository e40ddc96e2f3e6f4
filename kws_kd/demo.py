"""`kws-kd demo`: the whole method end to end on offline data, as cached stages.

data -> babble noise -> Noisy Speech Commands at D s -> teacher attention store
-> vanilla and distilled students -> int8 TFLite -> latency -> one summary table
and an attention plot. Every stage is keyed by a hash of its options and its
inputs (`kws_kd.stages`), so a rerun reuses what is finished and a killed run
resumes; `--out` holds everything.

The teacher runs in child processes (`kws-kd teacher ...`, `python -m
export.teacher_latency`): this process holds TensorFlow and never imports torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kws_kd.atomic import atomic_write_text
from kws_kd.errors import KwsKdError
from kws_kd.stages import StageResult, StageRunner

SC_SUBSET = "speech_commands_v0.02_test_subset"
REFERENCE_TEACHER = Path(__file__).resolve().parents[1] / "export" / "reference_teacher"
DATA_SOURCES = ("auto", "shared", "synth")


@dataclass
class DemoOptions:
    """Everything that decides the demo's result; stage keys hash these."""

    out: str = "kws-kd-demo"
    data: str = "auto"  # auto: the shared real subset when present, else espeak-ng synth; or a Speech Commands folder
    noise: str | None = None  # a folder of long speech-noise WAVs; default: babble from the data's own talkers
    shared_data: str | None = None
    synth_per_word: int = 40
    seconds: float = 8.0
    students: tuple[str, ...] = ("att_rnn", "lstm_p")
    kd_lambda: float = 0.25
    steps: int = 300
    batch_size: int = 32
    eval_every: int = 100
    learning_rates: tuple[float, ...] = (0.001, 0.0005, 0.0001, 0.00002)
    seed: int = 0
    teacher: str | None = None  # default: the shipped reference teacher
    train_teacher: bool = False
    teacher_minutes: float = 10.0
    rollout_layers: str = "all"
    rollout_mode: str = "rollout"
    max_clips_per_label: int | None = None  # per split; None = every clip
    babble_files: int = 12
    bench_runs: int = 50
    teacher_bench_runs: int = 10
    calibration_clips: int = 200
    quick: bool = False

    @classmethod
    def quick_defaults(cls, **overrides) -> "DemoOptions":
        """The <= 3-minute smoke version used by the tests: tiny data, short clips, a few steps."""
        base = dict(
            seconds=2.0, steps=12, batch_size=16, eval_every=6, max_clips_per_label=6, babble_files=2,
            synth_per_word=3, bench_runs=5, teacher_bench_runs=2, calibration_clips=16,
            teacher_minutes=1.0, quick=True,
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class DemoSummary:
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------- data


def find_shared_data(explicit: str | None = None) -> Path | None:
    """The shared real Speech Commands subset: --shared-data, $KWS_KD_SHARED_DATA, or ../shared/data."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("KWS_KD_SHARED_DATA"):
        candidates.append(Path(os.environ["KWS_KD_SHARED_DATA"]))
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        for path in (c / SC_SUBSET, c):
            if (path / "_background_noise_").is_dir() and (path / "yes").is_dir():
                return path.resolve()
    if explicit:
        raise KwsKdError(f"{explicit}: no Speech Commands folder (expected {SC_SUBSET}/ or yes/, _background_noise_/)")
    return None


def _limit_per_label(manifest, per_label: int | None, seed: int):
    """A deterministic subset: at most `per_label` clips of each label in each split."""
    if per_label is None:
        return manifest
    rng = np.random.default_rng(seed)
    keep = []
    for split in ("train", "validation", "test"):
        by_label: dict[str, list] = {}
        for c in manifest.split(split):
            by_label.setdefault(c.label, []).append(c)
        for label in sorted(by_label):
            clips = by_label[label]
            idx = rng.permutation(len(clips))[:per_label]
            keep += [clips[i] for i in sorted(idx)]
    return replace(manifest, clips=keep)


def source_manifest(opts: DemoOptions, runner: StageRunner) -> tuple[object, dict]:
    """The keyword dataset (real voices when available) and a description for stage keys."""
    from kws_kd.data.load import load_dataset

    choice = opts.data
    if choice not in DATA_SOURCES:
        if not Path(choice).is_dir():
            raise KwsKdError(f"--data must be one of {', '.join(DATA_SOURCES)} or a Speech Commands folder; {choice!r} is neither")
        manifest = load_dataset(choice)
        desc = {"source": str(Path(choice).resolve()), "hash": manifest.content_hash()}
        return _limit_per_label(manifest, opts.max_clips_per_label, opts.seed), desc
    shared = find_shared_data(opts.shared_data) if choice in ("auto", "shared") else None
    if choice == "shared" and shared is None:
        raise KwsKdError("--data shared: the shared Speech Commands subset was not found (try --shared-data DIR)")
    if shared is not None:
        manifest = load_dataset(shared)
        desc = {"source": "shared", "path": str(shared), "hash": manifest.content_hash()}
    else:
        from kws_kd.data.synth import build_synth

        params = {"per_word": opts.synth_per_word, "seed": opts.seed}

        def build(folder: Path) -> dict:
            m = build_synth(folder / "synth", per_word=opts.synth_per_word, seed=opts.seed, overwrite=True)
            return {"clips": len(m.clips)}

        stage = runner.run("synth", params, build)
        manifest = load_dataset(stage.path / "synth")
        desc = {"source": "synth", "stage": stage.key}
    return _limit_per_label(manifest, opts.max_clips_per_label, opts.seed), desc


def noisy_stage(opts: DemoOptions, runner: StageRunner) -> StageResult:
    from kws_kd.data.babble import babble_sources, build_babble
    from kws_kd.data.noisy import build_noisy

    manifest, desc = source_manifest(opts, runner)
    params = {"data": desc, "clips": manifest.content_hash(), "seconds": opts.seconds, "seed": opts.seed,
              "babble_files": opts.babble_files, "noise": str(Path(opts.noise).resolve()) if opts.noise else None}

    def build(folder: Path) -> dict:
        if opts.noise:
            noise = Path(opts.noise)
        else:
            noise = folder / "babble"
            sources = babble_sources(manifest, words="unknown", split="train")
            if len(sources) < 8:  # tiny subsets: any train talker will do
                sources = babble_sources(manifest, words="all", split="train")
            build_babble(sources, noise, num_files=opts.babble_files, seconds=max(30.0, 2 * opts.seconds),
                         seed=opts.seed, overwrite=True)
        noisy = build_noisy(manifest, noise, opts.seconds, folder / "noisy", seed=opts.seed, overwrite=True)
        counts = {s: len(noisy.split(s)) for s in ("train", "validation", "test")}
        return {"clips": counts, "source": desc["source"]}

    return runner.run("noisy", params, build)


# --------------------------------------------------------------------- teacher (child processes)


def _kws_kd(*args: str) -> None:
    """Run a `kws-kd` subcommand in a child process (torch stays out of this one)."""
    cmd = [sys.executable, "-m", "kws_kd.cli.main", *args]
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()
        raise KwsKdError(f"`kws-kd {' '.join(args[:2])}` failed: {tail[-1] if tail else 'exit ' + str(proc.returncode)}")


def teacher_stage(opts: DemoOptions, runner: StageRunner, noisy: StageResult) -> tuple[Path, StageResult | None]:
    """The teacher folder: given, shipped, or fine-tuned from scratch here (--train-teacher)."""
    if not opts.train_teacher:
        teacher = Path(opts.teacher) if opts.teacher else REFERENCE_TEACHER
        if not (teacher / "teacher.json").is_file():
            raise KwsKdError(f"{teacher}: no teacher checkpoint (teacher.json missing); use --train-teacher or --teacher DIR")
        return teacher, None
    params = {"minutes": opts.teacher_minutes, "seed": opts.seed}

    def build(folder: Path) -> dict:
        _kws_kd("teacher", "finetune", "--data", str(noisy.path / "noisy"), "--out", str(folder / "teacher"),
                "--config", "small-cpu", "--fresh-mix", "--max-minutes", str(opts.teacher_minutes))
        return {}

    stage = runner.run("teacher", params, build, upstream=[noisy])
    return stage.path / "teacher", stage


def store_stage(opts: DemoOptions, runner: StageRunner, noisy: StageResult, teacher: Path,
                teacher_stage_result: StageResult | None) -> StageResult:
    from kws_kd.store import TeacherStore

    params = {"teacher": str(teacher), "teacher_hash": _teacher_fingerprint(teacher),
              "layers": opts.rollout_layers, "mode": opts.rollout_mode}
    upstream = [noisy] + ([teacher_stage_result] if teacher_stage_result else [])

    def build(folder: Path) -> dict:
        _kws_kd("teacher", "export", "--teacher", str(teacher), "--data", str(noisy.path / "noisy"),
                "--out", str(folder / "store"), f"--layers={opts.rollout_layers}", "--mode", opts.rollout_mode)
        return {"clips": len(TeacherStore.open(folder / "store").clip_ids())}

    return runner.run("teacher-store", params, build, upstream=upstream)


def _teacher_fingerprint(teacher: Path) -> str:
    """Cheap identity of a teacher folder (file names, sizes, mtimes) for stage keys."""
    if not teacher.is_dir():
        return "missing"
    parts = sorted(f"{p.name}:{p.stat().st_size}" for p in teacher.iterdir() if p.is_file())
    return ";".join(parts)


def teacher_metrics(store_path: Path, manifest, clip_seconds: float) -> dict:
    """Teacher test accuracy from its stored logits, and its attention mass in the keyword span."""
    from kws_kd.evaluate import span_mass
    from kws_kd.store import TeacherStore

    store = TeacherStore.open(store_path)
    test = manifest.split("test")
    index = {name: i for i, name in enumerate(store.labels)}  # logits follow the teacher's label order
    logits = np.stack([store.logits(c.clip_id) for c in test])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == np.array([index.get(c.label, -1) for c in test])))
    with_span = [c for c in test if c.keyword_start is not None]
    attention = np.stack([store.attention(c.clip_id) for c in with_span])
    # Frame 0 keeps the identity share of the rollout (it is c_1 itself); judge the rest.
    attention[:, 0] = 0.0
    spans = np.array([[c.keyword_start, c.keyword_end] for c in with_span])
    return {"accuracy": accuracy, "attention": span_mass(attention, spans, clip_seconds)}


def teacher_latency(teacher: Path, seconds: float, runs: int) -> dict:
    cmd = [sys.executable, "-m", "export.teacher_latency", "--teacher", str(teacher), "--seconds", str(seconds),
           "--threads", "1", "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsKdError(f"teacher latency failed: {(proc.stderr or '').strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- students


def student_stage(opts: DemoOptions, runner: StageRunner, model: str, kd_lambda: float, noisy: StageResult,
                  store: StageResult, *, seed: int | None = None, ship: bool = True) -> StageResult:
    """Train one student (resumes inside its folder if interrupted); with `ship`, export int8 and measure it."""
    seed = opts.seed if seed is None else seed
    params = {"model": model, "kd_lambda": kd_lambda, "steps": opts.steps, "batch_size": opts.batch_size,
              "eval_every": opts.eval_every, "seed": seed, "learning_rates": list(opts.learning_rates),
              "ship": ship}
    if ship:
        params.update({"bench_runs": opts.bench_runs, "calibration_clips": opts.calibration_clips})

    def build(folder: Path) -> dict:
        from kws_kd.bench.host import host_latency
        from kws_kd.data.load import load_dataset
        from kws_kd.evaluate import attention_in_span
        from kws_kd.run import load_run
        from kws_kd.tflite.evaluate import evaluate_tflite
        from kws_kd.tflite.export import export_run
        from kws_kd.train import TrainOptions, train

        run_dir = folder / "run"
        data = str(noisy.path / "noisy")
        train(TrainOptions(
            model=model, data=data, out=str(run_dir), teacher_store=str(store.path / "store") if kd_lambda > 0 else None,
            kd_lambda=kd_lambda, steps=opts.steps, batch_size=opts.batch_size, eval_every=opts.eval_every,
            seed=seed, learning_rates=list(opts.learning_rates),
        ))
        run = load_run(run_dir)
        float_metrics = run.test_metrics or {}
        attention = attention_in_span(run, "test")
        if not ship:
            return {"model": model, "kd_lambda": kd_lambda, "seed": seed, "float_accuracy": float_metrics.get("accuracy"),
                    "attention": attention, "run": str(run_dir)}
        tflite = folder / f"{model}_int8.tflite"
        export_run(run_dir, tflite, quantize="int8", calibration_clips=opts.calibration_clips,
                   verify_clips=min(100, opts.calibration_clips))
        manifest = load_dataset(data)
        int8_metrics = evaluate_tflite(tflite, manifest, "test")
        latency = host_latency(tflite, threads=1, runs=opts.bench_runs, warmup=min(10, opts.bench_runs))
        return {
            "model": model, "kd_lambda": kd_lambda,
            "float_accuracy": float_metrics.get("accuracy"),
            "int8_accuracy": int8_metrics.get("accuracy"),
            "int8_size_bytes": tflite.stat().st_size,
            "int8_latency_ms": latency["median_ms"], "int8_latency_p90_ms": latency["p90_ms"],
            "attention": attention, "run": str(run_dir), "tflite": str(tflite),
        }

    name = f"student-{model}-l{kd_lambda:g}" + ("" if ship else f"-s{seed}")
    return runner.run(name, params, build, upstream=[noisy, store])


# --------------------------------------------------------------------- the whole demo


def run_demo(opts: DemoOptions, log=print) -> DemoSummary:
    """Run (or resume) every stage and write summary.json / summary.md / attention.png into opts.out."""
    from kws_kd.data.load import load_dataset

    if not 0.0 <= opts.kd_lambda <= 1.0:
        raise KwsKdError(f"--kd-lambda must be in [0, 1], got {opts.kd_lambda}")
    start = time.monotonic()
    out = Path(opts.out)
    runner = StageRunner(out / "stages", log=log)
    noisy = noisy_stage(opts, runner)
    teacher, trained = teacher_stage(opts, runner, noisy)
    store = store_stage(opts, runner, noisy, teacher, trained)
    manifest = load_dataset(noisy.path / "noisy")

    students = {}
    for model in opts.students:
        for lam in (0.0, opts.kd_lambda):
            students[(model, lam)] = student_stage(opts, runner, model, lam, noisy, store)

    log("[summary] teacher accuracy, attention and latency ...")
    t_metrics = teacher_metrics(store.path / "store", manifest, opts.seconds)
    t_latency = teacher_latency(teacher, opts.seconds, opts.teacher_bench_runs)
    summary = DemoSummary()
    summary.rows.append({
        "model": "teacher (wav2vec 2.0, PyTorch fp32)", "kd_lambda": None,
        "float_accuracy": t_metrics["accuracy"], "int8_accuracy": None,
        "size_bytes": t_latency["parameters"] * 4, "latency_ms": t_latency["median_ms"],
        "mass_in_span": t_metrics["attention"]["mass_in_span"],
        "ratio_to_chance": t_metrics["attention"]["ratio_to_chance"],
        "peak_in_span": t_metrics["attention"]["peak_in_span"],
    })
    for (model, lam), st in students.items():
        s = st.summary
        summary.rows.append({
            "model": model, "kd_lambda": lam, "float_accuracy": s["float_accuracy"],
            "int8_accuracy": s["int8_accuracy"], "size_bytes": s["int8_size_bytes"],
            "latency_ms": s["int8_latency_ms"], "mass_in_span": s["attention"]["mass_in_span"],
            "ratio_to_chance": s["attention"]["ratio_to_chance"], "peak_in_span": s["attention"]["peak_in_span"],
        })
    counts = noisy.summary.get("clips", {})
    summary.notes = [
        f"data: {noisy.summary.get('source')} keywords in babble, {opts.seconds:g} s clips, "
        f"train/val/test = {counts.get('train')}/{counts.get('validation')}/{counts.get('test')}",
        f"students: {opts.steps} steps, batch {opts.batch_size}, lambda in (0, {opts.kd_lambda:g}); "
        f"latency: LiteRT int8, 1 thread, XNNPACK, median of {opts.bench_runs}; teacher: torch, 1 thread",
        "chance mass = the keyword span's share of the clip; teacher frame 0 excluded",
        "CPU-scale toy numbers on a 3k-clip subset: not comparable with the paper's tables",
    ]
    summary.plot = str(_plot(opts, students, store, manifest, out))
    summary.seconds = time.monotonic() - start
    text = format_table(summary)
    atomic_write_text(out / "summary.md", text + "\n")
    atomic_write_text(out / "summary.json", json.dumps(asdict(summary), indent=2, default=str) + "\n")
    log(text)
    return summary


def _plot(opts: DemoOptions, students: dict, store: StageResult, manifest, out: Path) -> Path:
    """Fig. 2 of the paper for the first test clip with a keyword span: teacher vs students."""
    from kws_kd.plot_attention import plot_attention

    clip = next(c for c in manifest.split("test") if c.keyword_start is not None)
    runs = [st.summary["run"] for st in students.values()]
    return plot_attention(runs, str(store.path / "store"), clip.clip_id, out / "attention.png")


def format_table(summary: DemoSummary) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    lines = [
        "| model | λ | accuracy float (%) | accuracy int8 (%) | size (KB) | latency (ms) | attention mass in span | × chance | peak in span (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.rows:
        lam = "-" if r["kd_lambda"] is None else f"{r['kd_lambda']:g}"
        lines.append(
            f"| {r['model']} | {lam} | {pct(r['float_accuracy'])} | {pct(r['int8_accuracy'])} | "
            f"{r['size_bytes'] / 1024:.0f} | {r['latency_ms']:.2f} | {r['mass_in_span']:.3f} | "
            f"{r['ratio_to_chance']:.2f} | {pct(r['peak_in_span'])} |"
        )
    lines += [""] + [f"- {n}" for n in summary.notes] + [f"- attention plot: {summary.plot}",
                                                         f"- wall time: {summary.seconds:.0f} s"]
    return "\n".join(lines)
