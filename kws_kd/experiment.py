"""Reusable experiment stages: data, teacher, teacher store, one student run.

`kws-kd demo` and `benchmarks/reproduce_table*.py` assemble these. Each is a
cached stage (`kws_kd.stages`) keyed by its options and its inputs. The teacher
runs in child processes (`kws-kd teacher ...`, `python -m export.teacher_latency`):
the calling process holds TensorFlow and never imports torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.stages import StageResult, StageRunner

SC_SUBSET = "speech_commands_v0.02_test_subset"
REFERENCE_TEACHER = Path(__file__).resolve().parents[1] / "export" / "reference_teacher"
DATA_SOURCES = ("auto", "shared", "synth")


@dataclass
class ExperimentOptions:
    """What decides an experiment's numbers; stage keys hash these."""

    data: str = "auto"  # auto: the shared real subset when present, else espeak-ng synth; or a dataset folder
    noise: str | None = None  # a folder of long speech-noise WAVs; default: babble from the data's own talkers
    shared_data: str | None = None
    synth_per_word: int = 40
    seconds: float = 8.0
    kd_lambda: float = 0.25
    steps: int = 300
    batch_size: int = 32
    eval_every: int = 100
    # None: `training_recipe` picks the paper's recipe for full-scale runs, a short-run one below.
    learning_rates: tuple[float, ...] | None = None
    teacher_first_frame: str = "neighbour"  # see kws_kd.distill.fix_first_frame
    # > 0: every student first trains this many steps on the clean 1 s keywords (one cached
    # run per student and seed), and both its vanilla and its distilled run start from it.
    pretrain_steps: int = 0
    pretrain_batch_size: int = 64
    precision: str = "float32"  # training graph precision (kws_kd.graph_options.PRECISIONS)
    student_config: dict = field(default_factory=dict)  # overrides on top of the recipe's (ablations)
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


#: Below this many steps a run uses the short-run recipe (`training_recipe`).
SHORT_RUN_STEPS = 2000
SHORT_RUN_LEARNING_RATES = (0.002, 0.002, 0.0005)
#: TC-ResNet's paper BN momentum (0.997) needs thousands of steps before its moving
#: statistics forget their initial values: after 200 steps 55 % of them is still the
#: initial mean 0 / variance 1, and validation sits at chance (measured: 9.0 % test
#: accuracy after 200 steps at 8 s, 27.5 % with 0.9 and Adam).
SHORT_RUN_STUDENT_CONFIG = {"tc_resnet": {"bn_momentum": 0.9}}


def training_recipe(opts: ExperimentOptions, model: str) -> dict:
    """Optimizer, learning rates and student-config overrides for one student run.

    Full-scale runs (>= SHORT_RUN_STEPS) get the paper's recipe: each student's
    default optimizer and schedule (kws_kd.train) and its paper config. A CPU-scale
    run of a few hundred steps gets Adam at 0.002 for two thirds of the run, then
    0.0005, for every student, plus SHORT_RUN_STUDENT_CONFIG: the paper's four-step
    schedule spends three quarters of a short run at <= 0.0005, and TC-ResNet's
    SGD at the Adam rates (what the demo did before) does not move at all.
    Explicit `learning_rates` always win (with Adam).
    """
    short = opts.steps < SHORT_RUN_STEPS
    if opts.learning_rates is not None:
        lrs, optimizer = list(opts.learning_rates), "adam"
    elif short:
        lrs, optimizer = list(SHORT_RUN_LEARNING_RATES), "adam"
    else:
        lrs, optimizer = None, None  # kws_kd.train's per-student defaults
    config = dict(SHORT_RUN_STUDENT_CONFIG.get(model, {})) if short else {}
    config.update(opts.student_config)
    return {"optimizer": optimizer, "learning_rates": lrs, "student_config": config}


@dataclass
class DataRef:
    """A dataset folder to train on, and the stage that made it (None for a user's folder)."""

    path: Path
    key: str
    stage: StageResult | None = None
    summary: dict | None = None

    @property
    def upstream(self) -> list[StageResult]:
        return [self.stage] if self.stage else []


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


def source_manifest(opts: ExperimentOptions, runner: StageRunner) -> tuple[object, dict]:
    """The keyword dataset (real voices when available) and a description for stage keys."""
    from kws_kd.data.load import load_dataset

    choice = opts.data
    if choice not in DATA_SOURCES:
        if not Path(choice).is_dir():
            raise KwsKdError(f"--data must be one of {', '.join(DATA_SOURCES)} or a dataset folder; {choice!r} is neither")
        manifest = load_dataset(choice)
        desc = {"source": str(Path(choice).resolve()), "hash": manifest.content_hash()}
    else:
        shared = find_shared_data(opts.shared_data) if choice in ("auto", "shared") else None
        if choice == "shared" and shared is None:
            raise KwsKdError("--data shared: the shared Speech Commands subset was not found (try --shared-data DIR)")
        if shared is not None:
            manifest = load_dataset(shared)
            desc = {"source": "shared real speech", "path": str(shared), "hash": manifest.content_hash()}
        else:
            from kws_kd.data.synth import build_synth

            def build(folder: Path) -> dict:
                m = build_synth(folder / "synth", per_word=opts.synth_per_word, seed=opts.seed, overwrite=True)
                return {"clips": len(m.clips)}

            stage = runner.run("synth", {"per_word": opts.synth_per_word, "seed": opts.seed}, build)
            manifest = load_dataset(stage.path / "synth")
            desc = {"source": "espeak-ng synth", "stage": stage.key}
    return _limit_per_label(manifest, opts.max_clips_per_label, opts.seed), desc


def noisy_data(opts: ExperimentOptions, runner: StageRunner) -> DataRef:
    """Noisy Speech Commands at `opts.seconds`: keywords of the source data in babble (or `opts.noise`)."""
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

    stage = runner.run(f"noisy-{opts.seconds:g}s", params, build)
    return DataRef(stage.path / "noisy", stage.key, stage, stage.summary)


def folder_data(path: str | Path) -> DataRef:
    """A user's dataset folder used as it is (e.g. FSD50K); keyed by its manifest hash."""
    from kws_kd.data.load import load_dataset

    manifest = load_dataset(path)
    counts = {s: len(manifest.split(s)) for s in ("train", "validation", "test")}
    return DataRef(Path(path).resolve(), manifest.content_hash(), None, {"clips": counts, "source": str(path)})


# --------------------------------------------------------------------- teacher (child processes)


def _kws_kd(*args: str) -> None:
    """Run a `kws-kd` subcommand in a child process (torch stays out of this one).

    The child's stderr (its progress bars) is passed through as it comes; its
    last line becomes the error message if the child fails.
    """
    cmd = [sys.executable, "-m", "kws_kd.cli.main", *args]
    tail = b""
    with subprocess.Popen(cmd, stderr=subprocess.PIPE) as proc:
        while chunk := proc.stderr.read1(4096):
            sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
            tail = (tail + chunk)[-4096:]
    if proc.returncode != 0:
        lines = tail.decode(errors="replace").replace("\r", "\n").strip().splitlines()
        raise KwsKdError(f"`kws-kd {' '.join(args[:2])}` failed: {lines[-1] if lines else 'exit ' + str(proc.returncode)}")


def teacher_folder(opts: ExperimentOptions, runner: StageRunner, data: DataRef) -> tuple[Path, list[StageResult]]:
    """The teacher folder (given, shipped, or fine-tuned from scratch with --train-teacher) and its stage."""
    if not opts.train_teacher:
        teacher = Path(opts.teacher) if opts.teacher else REFERENCE_TEACHER
        if not (teacher / "teacher.json").is_file():
            raise KwsKdError(f"{teacher}: no teacher checkpoint (teacher.json missing); use --train-teacher or --teacher DIR")
        return teacher, []

    def build(folder: Path) -> dict:
        _kws_kd("teacher", "finetune", "--data", str(data.path), "--out", str(folder / "teacher"),
                "--config", "small-cpu", "--fresh-mix", "--max-minutes", str(opts.teacher_minutes))
        return {}

    params = {"minutes": opts.teacher_minutes, "seed": opts.seed, "data": data.key}
    stage = runner.run("teacher", params, build, upstream=data.upstream)
    return stage.path / "teacher" / "best", [stage]


def teacher_store(opts: ExperimentOptions, runner: StageRunner, data: DataRef, teacher: Path,
                  teacher_stages: list[StageResult]) -> tuple[Path, StageResult]:
    """Export the teacher attention store for every split of `data`: (store folder, its stage)."""
    from kws_kd.store import TeacherStore

    params = {"data": data.key, "teacher": str(teacher), "teacher_files": _teacher_fingerprint(teacher),
              "layers": opts.rollout_layers, "mode": opts.rollout_mode}

    def build(folder: Path) -> dict:
        _kws_kd("teacher", "export", "--teacher", str(teacher), "--data", str(data.path),
                "--out", str(folder / "store"), f"--layers={opts.rollout_layers}", "--mode", opts.rollout_mode)
        return {"clips": len(TeacherStore.open(folder / "store").clip_ids())}

    stage = runner.run(f"store-{data.key[:8]}", params, build, upstream=data.upstream + teacher_stages)
    return stage.path / "store", stage


def _teacher_fingerprint(teacher: Path) -> str:
    """Cheap identity of a teacher folder (file names and sizes) for stage keys."""
    if not teacher.is_dir():
        return "missing"
    return ";".join(sorted(f"{p.name}:{p.stat().st_size}" for p in teacher.iterdir() if p.is_file()))


def teacher_metrics(store_path: Path, manifest, clip_seconds: float) -> dict:
    """Teacher test metric from its stored logits, and (keyword data) its attention mass in the span."""
    from kws_kd.evaluate import classification_report, main_metric, span_mass
    from kws_kd.store import TeacherStore

    store = TeacherStore.open(store_path)
    test = manifest.split("test")
    order = [manifest.label_index()[name] for name in store.labels]  # teacher logit j -> dataset label order[j]
    logits = np.zeros((len(test), manifest.num_labels), np.float32) - 1e9
    logits[:, order] = np.stack([store.logits(c.clip_id) for c in test])
    index = manifest.label_index()
    if manifest.multi_label:
        targets = np.zeros((len(test), manifest.num_labels), np.float32)
        for i, c in enumerate(test):
            targets[i, [index[lab] for lab in c.labels]] = 1.0
    else:
        targets = np.array([index[c.label] for c in test])
    report = classification_report(logits, targets, manifest.label_names, manifest.multi_label)
    out = {"metric": report["metric"], "value": main_metric(report), "attention": None}
    with_span = [c for c in test if c.keyword_start is not None]
    if with_span:
        attention = np.stack([store.attention(c.clip_id) for c in with_span])
        # Frame 0 keeps the identity share of the rollout (it is c_1 itself); judge the rest.
        attention[:, 0] = 0.0
        spans = np.array([[c.keyword_start, c.keyword_end] for c in with_span])
        out["attention"] = span_mass(attention, spans, clip_seconds)
    return out


def teacher_latency(teacher: Path, seconds: float, runs: int) -> dict:
    """Median latency of the torch teacher, 1 thread, measured in a child process."""
    cmd = [sys.executable, "-m", "export.teacher_latency", "--teacher", str(teacher), "--seconds", str(seconds),
           "--threads", "1", "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsKdError(f"teacher latency failed: {(proc.stderr or '').strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- students


def clean_data(opts: ExperimentOptions, runner: StageRunner) -> DataRef:
    """The clean 1 s keyword dataset the noisy one is built from (same clips, same splits), as a folder.

    Only a manifest is written (its paths point at the source audio), so a
    subset (`max_clips_per_label`) pre-trains on exactly the clips the noisy
    data was made from.
    """
    from kws_kd.data.manifest import write_manifest

    manifest, desc = source_manifest(opts, runner)

    def build(folder: Path) -> dict:
        write_manifest(manifest, folder / "clean")
        return {"clips": {s: len(manifest.split(s)) for s in ("train", "validation", "test")}, "source": desc["source"]}

    stage = runner.run("clean-1s", {"data": desc, "clips": manifest.content_hash()}, build)
    return DataRef(stage.path / "clean", stage.key, stage, stage.summary)


@dataclass
class RunPlan:
    """A training stage before it runs: its stage identity and the `TrainOptions` it trains."""

    stage: StageResult  # name, key and folder; no summary yet
    params: dict
    upstream: list[StageResult]
    options: object  # kws_kd.train.TrainOptions, out inside the stage folder


def _plan(runner: StageRunner, name: str, params: dict, upstream: list[StageResult], **train_kwargs) -> RunPlan:
    from kws_kd.stages import stage_key
    from kws_kd.train import TrainOptions

    path = runner.path_for(name, params, upstream)
    stage = StageResult(name, stage_key(name, params, upstream), path)
    return RunPlan(stage, params, upstream, TrainOptions(out=str(path / "run"), **train_kwargs))


def _pretrain_plan(opts: ExperimentOptions, runner: StageRunner, model: str, seed: int) -> RunPlan | None:
    if opts.pretrain_steps <= 0:
        return None
    clean = clean_data(opts, runner)
    recipe = training_recipe(replace(opts, steps=opts.pretrain_steps), model)
    eval_every = max(1, opts.pretrain_steps // 4)
    params = {"model": model, "steps": opts.pretrain_steps, "batch_size": opts.pretrain_batch_size,
              "eval_every": eval_every, "seed": seed, "precision": opts.precision, **recipe}
    return _plan(runner, f"pretrain-{model}-s{seed}", params, clean.upstream,
                 model=model, data=str(clean.path), steps=opts.pretrain_steps, batch_size=opts.pretrain_batch_size,
                 eval_every=eval_every, seed=seed, optimizer=recipe["optimizer"],
                 learning_rates=recipe["learning_rates"], student_config=recipe["student_config"],
                 precision=opts.precision)


def pretrain_run(opts: ExperimentOptions, runner: StageRunner, model: str, *, seed: int | None = None) -> StageResult | None:
    """The shared warm start of one student: `opts.pretrain_steps` vanilla steps on clean 1 s keywords.

    None when `pretrain_steps` is 0 (students start from scratch). The vanilla
    and the distilled 8 s runs of a student and seed both start from this one
    run, so their comparison stays fair.
    """
    plan = _pretrain_plan(opts, runner, model, opts.seed if seed is None else seed)
    if plan is None:
        return None

    def build(folder: Path) -> dict:
        from kws_kd.run import load_run
        from kws_kd.train import train

        train(plan.options)
        run = load_run(plan.options.out)
        best = max((r["val_metric"] for r in run.history()), default=None)
        return {"model": model, "seed": plan.options.seed, "run": plan.options.out, "val_metric": best,
                "test_metric": (run.test_metrics or {}).get(run.config.metric_name),
                "train_seconds": _train_seconds(run)}

    return runner.run(plan.stage.name, plan.params, build, upstream=plan.upstream)


def _train_seconds(run) -> float | None:
    """Training wall time of a run (its last validation's clock), whichever process trained it."""
    history = run.history()
    return history[-1].get("seconds") if history else None


def _student_plan(opts: ExperimentOptions, runner: StageRunner, model: str, kd_lambda: float, data: DataRef,
                  store: Path | None, store_stages: list[StageResult] | None, seed: int, ship: bool) -> RunPlan:
    recipe = training_recipe(opts, model)
    init = _pretrain_plan(opts, runner, model, seed)
    params = {"model": model, "kd_lambda": kd_lambda, "steps": opts.steps, "batch_size": opts.batch_size,
              "eval_every": opts.eval_every, "seed": seed, **recipe, "precision": opts.precision,
              "teacher_first_frame": opts.teacher_first_frame if kd_lambda > 0 else None,
              "data": data.key, "store": str(store) if kd_lambda > 0 else None, "ship": ship}
    if ship:
        params.update({"bench_runs": opts.bench_runs, "calibration_clips": opts.calibration_clips})
    name = f"student-{model}-l{kd_lambda:g}-s{seed}" + ("-warm" if init else "") + ("-int8" if ship else "")
    upstream = data.upstream + (store_stages or []) + ([init.stage] if init else [])
    return _plan(runner, name, params, upstream,
                 model=model, data=str(data.path), teacher_store=str(store) if kd_lambda > 0 else None,
                 kd_lambda=kd_lambda, steps=opts.steps, batch_size=opts.batch_size, eval_every=opts.eval_every,
                 seed=seed, optimizer=recipe["optimizer"], learning_rates=recipe["learning_rates"],
                 student_config=recipe["student_config"], teacher_first_frame=opts.teacher_first_frame,
                 precision=opts.precision, init_from=init.options.out if init else None)


def student_run(opts: ExperimentOptions, runner: StageRunner, model: str, kd_lambda: float, data: DataRef,
                store: Path | None, store_stages: list[StageResult] | None = None, *, seed: int | None = None,
                ship: bool = True) -> StageResult:
    """Train one student (resumes inside its folder if interrupted); with `ship`, export int8 and measure it.

    The summary holds the test metric, the attention mass in the keyword span
    (None without spans) and, when shipped, int8 accuracy, size and latency.
    A run that `train_ahead` already trained is only evaluated (and shipped).
    """
    seed = opts.seed if seed is None else seed
    pretrain_run(opts, runner, model, seed=seed)  # the shared init (cached after its first use)
    plan = _student_plan(opts, runner, model, kd_lambda, data, store, store_stages, seed, ship)

    def build(folder: Path) -> dict:
        from kws_kd.evaluate import attention_in_span
        from kws_kd.run import load_run
        from kws_kd.train import train

        run_dir = Path(plan.options.out)
        train(plan.options)
        run = load_run(run_dir)
        metric = run.config.metric_name
        try:
            attention = attention_in_span(run, "test")
        except KwsKdError:  # no keyword spans (e.g. FSD50K)
            attention = None
        summary = {"model": model, "kd_lambda": kd_lambda, "seed": seed, "metric": metric,
                   "float_metric": (run.test_metrics or {}).get(metric), "attention": attention, "run": str(run_dir),
                   "init": plan.options.init_from, "train_seconds": _train_seconds(run),
                   "best_val_metric": max((r["val_metric"] for r in run.history()), default=None),
                   "history": [{"step": r["step"], "val_metric": r["val_metric"]} for r in run.history()]}
        if ship:
            summary.update(_ship(opts, run_dir, model, data.path, folder, metric))
        return summary

    return runner.run(plan.stage.name, plan.params, build, upstream=plan.upstream)


def train_ahead(opts: ExperimentOptions, runner: StageRunner, jobs: list[dict], *, workers: int = 2,
                log=print) -> None:
    """Train the unfinished runs behind `student_run(opts, runner, **job)` for every job, `workers` at a time.

    Pre-training runs go first (the runs that start from them wait for them);
    the `student_run` calls that follow then find their runs trained and only
    evaluate and ship them. Each run trains in its own child process
    (`kws_kd.parallel`).
    """
    from kws_kd.parallel import run_parallel

    plans = [_student_plan(opts, runner, job["model"], job["kd_lambda"], job["data"], job.get("store"),
                           job.get("store_stages"), opts.seed if job.get("seed") is None else job["seed"],
                           job.get("ship", True)) for job in jobs]
    pretrains = {}
    for job in jobs:
        p = _pretrain_plan(opts, runner, job["model"], opts.seed if job.get("seed") is None else job["seed"])
        if p is not None:
            pretrains[p.stage.path] = p
    for batch in (list(pretrains.values()), plans):
        run_parallel([p.options for p in batch if not runner.is_finished(p.stage.name, p.params, p.upstream)],
                     workers, log)


def _ship(opts: ExperimentOptions, run_dir: Path, model: str, data: Path, folder: Path, metric: str) -> dict:
    """Export the run to int8 TFLite, evaluate it on the test split, time it with LiteRT."""
    from kws_kd.bench.host import host_latency
    from kws_kd.tflite.evaluate import evaluate_tflite
    from kws_kd.tflite.export import export_run

    from kws_kd.tflite.streaming import STREAMABLE

    # A recurrence that can stream ships as a streaming file: one 20 ms frame of graph
    # instead of a 399-frame unrolled one (seconds to convert instead of minutes).
    streaming = model in STREAMABLE
    tflite = folder / f"{model}_int8{'_streaming' if streaming else ''}.tflite"
    export_run(run_dir, tflite, quantize="int8", calibration_clips=opts.calibration_clips,
               verify_clips=min(100, opts.calibration_clips), streaming=streaming)
    int8 = evaluate_tflite(tflite, str(data), "test")
    latency = host_latency(tflite, threads=1, runs=opts.bench_runs, warmup=min(10, opts.bench_runs))
    return {"int8_metric": int8.get(metric), "int8_size_bytes": tflite.stat().st_size, "streaming": streaming,
            "int8_latency_ms": latency["median_ms"], "int8_latency_p90_ms": latency["p90_ms"], "tflite": str(tflite)}
