"""Reusable experiment stages: the options, data, teacher and teacher store (students: `kws_kd.student_stages`).

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
from dataclasses import dataclass, replace
from typing import Literal
from pathlib import Path

import numpy as np

from kws_kd.data.shared import find_shared_data
from kws_kd.errors import KwsKdError
from kws_kd.graph_options import Precision
from kws_kd.options import like, option
from kws_kd.stages import StageResult, StageRunner
from kws_kd.train_options import FirstFrame, TrainOptions

REFERENCE_TEACHER = Path(__file__).resolve().parents[1] / "export" / "reference_teacher"
DATA_SOURCES = ("auto", "shared", "synth")


RolloutMode = Literal["rollout", "last_layer"]


@dataclass
class ExperimentOptions:
    """What decides an experiment's numbers (demo, Table 2 grid, curves); stage keys hash these.

    Options shared with `kws-kd train` reuse `TrainOptions`' definitions (`like`)
    with experiment-scale defaults.
    """

    data: str = option("auto", f"keyword source: {'|'.join(DATA_SOURCES)} (auto: the shared real Speech Commands "
                               "subset if found, else espeak-ng synth), or a dataset folder")
    noise: str | None = option(None, "folder of long speech-noise WAVs (default: babble from the data's own talkers)")
    shared_data: str | None = option(None, "folder holding speech_commands_v0.02_test_subset/ (default: ../shared/data)")
    synth_per_word: int = option(40, "espeak-ng clips per word when the shared data is absent", minimum=1)
    seconds: float = option(8.0, "clip length D in seconds", above=0.0)
    kd_lambda: float = like(TrainOptions, "kd_lambda", 0.25, help="λ of the distilled students", above=0.0,
                            minimum=None)
    steps: int = like(TrainOptions, "steps", 300)
    batch_size: int = like(TrainOptions, "batch_size", 32)
    eval_every: int = like(TrainOptions, "eval_every", 100)
    # None: `training_recipe` picks the paper's recipe for full-scale runs, a short-run one below.
    learning_rates: list[float] | None = like(
        TrainOptions, "learning_rates", None,
        help="Adam, piecewise over equal segments, for every student (default: kws_kd.experiment.training_recipe)")
    teacher_first_frame: FirstFrame = like(TrainOptions, "teacher_first_frame", "neighbour")
    pretrain_steps: int = option(0, "> 0: every student (and seed) first trains this many steps on the clean 1 s "
                                    "keywords, and both its vanilla and its distilled runs start from it "
                                    "(0: from scratch)", minimum=0)
    pretrain_batch_size: int = option(64, "batch size of the pre-training on clean 1 s keywords", minimum=1)
    precision: Precision = like(TrainOptions, "precision", "float32")
    student_config: dict = like(TrainOptions, "student_config", {}, help="student config overrides on top of the "
                                                                         "recipe's, as JSON (ablations)")
    seed: int = like(TrainOptions, "seed", 0, help="seed of data, initialisation and order")
    teacher: str | None = option(None, "teacher folder (default: the shipped export/reference_teacher)")
    train_teacher: bool = option(False, "fine-tune the small teacher from scratch first")
    teacher_minutes: float = option(10.0, "time budget of --train-teacher", above=0.0)
    rollout_layers: str = option("all", "teacher layers in the target ('all' is the paper's full rollout; see "
                                        "`kws-kd teacher export`)")
    rollout_mode: RolloutMode = option("rollout", "teacher target")
    max_clips_per_label: int | None = option(None, "at most this many clips per label and split (smoke runs)",
                                             minimum=1)
    babble_files: int = option(12, "babble noise files made from the data's talkers", minimum=1, cli=False)
    bench_runs: int = option(50, "LiteRT latency runs per exported student", minimum=1, cli=False)
    teacher_bench_runs: int = option(10, "latency runs of the torch teacher", minimum=1, cli=False)
    calibration_clips: int = option(200, "int8 calibration clips", minimum=1, cli=False)


#: Below this many steps a run uses the short-run recipe (`training_recipe`).
SHORT_RUN_STEPS = 2000
SHORT_RUN_LEARNING_RATES = (0.002, 0.002, 0.0005)


def training_recipe(opts: ExperimentOptions, model: str) -> dict:
    """Optimizer, learning rates and student-config overrides for one student run.

    Full-scale runs (>= SHORT_RUN_STEPS) get the paper's recipe: each student's
    default optimizer and schedule (kws_kd.train) and its paper config. A CPU-scale
    run of a few hundred steps gets Adam at 0.002 for two thirds of the run, then
    0.0005, for every student, plus the student's `StudentSpec.short_run_config`: the paper's four-step
    schedule spends three quarters of a short run at <= 0.0005, and TC-ResNet's
    SGD at the Adam rates (what the demo did before) does not move at all.
    Explicit `learning_rates` always win (with Adam).
    """
    from kws_kd.students.registry import get_spec

    short = opts.steps < SHORT_RUN_STEPS
    if opts.learning_rates is not None:
        lrs, optimizer = list(opts.learning_rates), "adam"
    elif short:
        lrs, optimizer = list(SHORT_RUN_LEARNING_RATES), "adam"
    else:
        lrs, optimizer = None, None  # kws_kd.train's per-student defaults
    config = dict(get_spec(model).short_run_config) if short else {}
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
