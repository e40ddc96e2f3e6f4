"""Ship a teacher: copy a run's best checkpoint (fp16) with its measured figures, or train it first.

Two ways in:

    python -m export.ship_teacher RUN [--data DIR] [--dest export/reference_teacher] [--limit N]
    python -m export.ship_teacher --recipe curriculum --data DIR --work WORK [--dest DEST] [--max-minutes M]
    python -m export.ship_teacher --recipe curriculum --smoke --data TINY --work WORK   # seconds, for tests
    python -m export.ship_teacher --verify DEST [--data DIR]   # re-measure DEST's subset_check

Shipping (`ship`): RUN/best goes to DEST with its weights in float16 (the fp16
`model.safetensors` must stay under `--max-mb`, 10 MB by default), plus the run's
metrics.csv and finetune.json. The shipped (fp16) weights are then measured on
the test split with the run's own deterministic mixes: accuracy at 1, 2, 4 and
8 s (and 1 s clean clips), the keyword focus of the three attention targets at
8 s (`export.attention_check`), and a small `subset_check` (the first K clips of
the fixed 8 s test pass: accuracy, loss, predictions, rollout mass) that
`--verify` and the tests re-evaluate. Everything lands in DEST/metrics.json;
README.md in DEST is kept. DEST is replaced atomically: a failed measurement
leaves the old one.

The curriculum (`run_recipe`): four stages, each a `kws-kd teacher finetune`
run in WORK/<n>_<stage>/, each initialised from the previous stage's best
(`--init-from`): clean 1 s keywords, then fresh 2 s, 4 s and 8 s mixtures.
After each stage its best is checked on fixed 8 s validation mixes (accuracy
and in-span attention mass per target) into WORK/recipe.json. Re-running the
same command resumes: finished stages are skipped, an interrupted one resumes
from its saved state (exactly). When the last stage is done the result is
shipped to DEST (default WORK/ship) with the per-stage records, the exact
command and the wall time summed over all launches. Exit code 3 means the
recipe stopped early (--max-minutes or a signal): run the same command again.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from export.attention_check import TARGETS, attention_focus
from export.finetune import (
    BEST_DIR,
    OPTIONS_JSON,
    FinetuneOptions,
    evaluate,
    finetune,
    make_sources,
    set_threads,
)
from export.teacher_model import HEAD_FILE, TEACHER_JSON, checkpoint_hash, load_teacher, save_teacher
from kws_kd.atomic import atomic_dir, atomic_write_text
from kws_kd.data.load import load_dataset
from kws_kd.errors import KwsKdError

DEFAULT_DEST = Path(__file__).resolve().parent / "reference_teacher"
KEEP = ("README.md",)
TEST_SECONDS = (1.0, 2.0, 4.0, 8.0)
SUBSET_CLIPS = 32
SUBSET_TOLERANCE = {"accuracy_clips": 1, "loss": 0.01, "rollout_mass": 0.01}
RECIPE_JSON = "recipe.json"
INCOMPLETE = 3  # exit code: the recipe stopped before its last stage finished


# -- measuring a shipped teacher -----------------------------------------------------------------

def _test_source(manifest, data: str, fresh_mix: bool, noise: str | None, seed: int, split: str = "test"):
    opts = FinetuneOptions(data=data, out="", fresh_mix=fresh_mix, seed=seed, noise=noise, clip_seconds=(8.0,),
                           progress=False)
    return make_sources(manifest, opts, splits=(split,))[split]


def subset_check(model, source, *, seed: int, clips: int = SUBSET_CLIPS, seconds: float = 8.0) -> dict:
    """Figures of `clips` fixed clips of the deterministic `seconds` pass: cheap to re-evaluate exactly."""
    res = evaluate(model, source, seconds, limit=clips, seed=seed, batch_size=8, predictions=True)
    focus = attention_focus(model, source, seconds, limit=clips, seed=seed)
    return {
        "seconds": seconds, "clips": res["clips"], "seed": seed,
        "accuracy": res.get("accuracy"), "loss": res["loss"], "predictions": res["predictions"],
        "rollout_mass": focus["rollout"]["mass"],
        "tolerance": dict(SUBSET_TOLERANCE, note="accuracy within accuracy_clips clips, loss and rollout mass "
                                                 "within the absolute values given (float rounding across machines)"),
    }


def compare_subset_check(expected: dict, measured: dict) -> list[str]:
    """What differs beyond the stated tolerance (empty: it matches)."""
    tol = expected.get("tolerance", SUBSET_TOLERANCE)
    bad = []
    if expected["clips"] != measured["clips"]:
        bad.append(f"clips {measured['clips']} vs {expected['clips']}")
    if expected.get("accuracy") is not None:
        if abs(measured["accuracy"] - expected["accuracy"]) * expected["clips"] > tol["accuracy_clips"] + 1e-6:
            bad.append(f"accuracy {measured['accuracy']:.4f} vs {expected['accuracy']:.4f}")
    if abs(measured["loss"] - expected["loss"]) > tol["loss"]:
        bad.append(f"loss {measured['loss']:.4f} vs {expected['loss']:.4f}")
    if abs(measured["rollout_mass"] - expected["rollout_mass"]) > tol["rollout_mass"]:
        bad.append(f"rollout mass {measured['rollout_mass']:.4f} vs {expected['rollout_mass']:.4f}")
    return bad


def measure(model, manifest, data: str, *, fresh_mix: bool, noise: str | None, seed: int,
            limit: int | None = None, subset_clips: int = SUBSET_CLIPS) -> dict:
    """Test figures of a teacher: accuracy at TEST_SECONDS, 1 s clean, attention at 8 s, subset_check."""
    t0 = time.time()
    test = _test_source(manifest, data, fresh_mix, noise, seed)
    focus = attention_focus(model, test, 8.0, limit=limit, seed=seed + 1)
    figures = {"test_accuracy_8s": focus["accuracy"], "test_clips": focus["clips"]}
    for s in TEST_SECONDS[:-1]:
        figures[f"test_accuracy_{s:g}s"] = evaluate(model, test, s, limit=limit, seed=seed + 1)["metric"]
    if fresh_mix:  # the clips as they are (no added noise), 1 s
        clean = _test_source(manifest, data, False, None, seed)
        figures["test_accuracy_1s_clean"] = evaluate(model, clean, 1.0, limit=limit, seed=seed + 1)["metric"]
    figures["attention_test_8s"] = {k: focus[k] for k in TARGETS}
    figures["subset_check"] = dict(subset_check(model, test, seed=seed + 1, clips=subset_clips),
                                   split="test", fresh_mix=fresh_mix, noise=noise, source_seed=seed)
    figures["measure_seconds"] = round(time.time() - t0, 1)
    return figures


def ship(run: Path, dest: Path, data: str | None = None, limit: int | None = None, *, extra: dict | None = None,
         max_mb: float = 10.0, subset_clips: int = SUBSET_CLIPS) -> dict:
    """Copy RUN/best to DEST in float16 and measure the shipped weights (see the module docstring)."""
    run, dest = Path(run), Path(dest)
    best = run / BEST_DIR
    if not (best / TEACHER_JSON).is_file():
        raise KwsKdError(f"{best}: no teacher checkpoint yet")
    opts_json = json.loads((run / OPTIONS_JSON).read_text())
    data = data or opts_json["data"]
    manifest = load_dataset(data)
    if manifest.content_hash() != opts_json.get("manifest_hash"):
        raise KwsKdError(f"{data}: not the dataset {run} was trained on (manifest hash differs)")
    seed = int(opts_json.get("seed", 0))
    meta = json.loads((best / TEACHER_JSON).read_text())
    keep = {k: meta[k] for k in ("step", "val_metric", "val_seconds", "init_from") if k in meta}
    with atomic_dir(dest, overwrite=True) as tmp:
        save_teacher(load_teacher(best), tmp / "teacher", extra=keep, dtype=torch.float16)
        for f in (tmp / "teacher").iterdir():
            f.rename(tmp / f.name)
        (tmp / "teacher").rmdir()
        size = sum((tmp / n).stat().st_size for n in ("model.safetensors", HEAD_FILE))
        if size > max_mb * 1e6:
            raise KwsKdError(f"{best}: the fp16 weights are {size / 1e6:.1f} MB, over the {max_mb:g} MB limit")
        for name in ("metrics.csv", OPTIONS_JSON):
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / ("training_" + name))
        for name in KEEP:
            if (dest / name).is_file():
                shutil.copy2(dest / name, tmp / name)
        model = load_teacher(tmp)  # measure exactly what ships (fp16-rounded weights)
        val_key = f"val_accuracy_{float(meta.get('val_seconds') or 8):g}s"
        figures = {"step": meta.get("step"), val_key: meta.get("val_metric"),
                   "weights_dtype": "float16", "weights_bytes": size, "num_parameters": meta.get("num_parameters")}
        figures |= measure(model, manifest, data, fresh_mix=bool(opts_json.get("fresh_mix")), noise=opts_json.get("noise"),
                           seed=seed, limit=limit, subset_clips=subset_clips)
        figures |= {"checkpoint_hash": checkpoint_hash(tmp), "dataset": data, "manifest_hash": manifest.content_hash()}
        figures |= extra or {}
        (tmp / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")
        _readable(tmp)
    return figures


def _readable(folder: Path) -> None:
    """Temporary files and folders are created private (0600/0700); a ship folder is for everyone to read."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        f.chmod(0o644)


def verify(dest: Path, data: str | None = None) -> dict:
    """Re-evaluate DEST's subset_check; returns {"ok", "differences", "expected", "measured"}."""
    dest = Path(dest)
    figures = json.loads((dest / "metrics.json").read_text())
    expected = figures.get("subset_check")
    if expected is None:
        raise KwsKdError(f"{dest / 'metrics.json'}: no subset_check (shipped before it existed)")
    data = data or figures["dataset"]
    manifest = load_dataset(data)
    if manifest.content_hash() != figures.get("manifest_hash"):
        raise KwsKdError(f"{data}: not the dataset {dest} was measured on (manifest hash differs)")
    if checkpoint_hash(dest) != figures.get("checkpoint_hash"):
        raise KwsKdError(f"{dest}: the weights are not the ones metrics.json describes (checkpoint hash differs)")
    source = _test_source(manifest, data, bool(expected["fresh_mix"]), expected.get("noise"),
                          int(expected["source_seed"]), split=expected.get("split", "test"))
    measured = subset_check(load_teacher(dest), source, seed=int(expected["seed"]), clips=int(expected["clips"]),
                            seconds=float(expected["seconds"]))
    bad = compare_subset_check(expected, measured)
    return {"ok": not bad, "differences": bad, "expected": expected, "measured": measured}


# -- the curriculum ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    clip_seconds: float
    fresh_mix: bool
    max_steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    eval_every: int


# The reference curriculum for `small-cpu-fast` on CPU. Step counts and batch sizes keep the
# per-stage cost roughly balanced (see docs/teacher.md for the measured step costs).
CURRICULUM = (
    Stage("clean_1s", 1.0, False, 3000, 32, 5e-4, 300, 250),
    Stage("mix_2s", 2.0, True, 2000, 32, 3e-4, 100, 250),
    Stage("mix_4s", 4.0, True, 1500, 16, 3e-4, 100, 250),
    Stage("mix_8s", 8.0, True, 1500, 16, 2e-4, 100, 250),
)
RECIPES = {"curriculum": CURRICULUM}


@dataclass
class RecipeOptions:
    data: str
    work: str
    dest: str | None = None  # default WORK/ship
    recipe: str = "curriculum"
    config: str = "small-cpu-fast"
    precision: str = "bfloat16"
    threads: int = 1
    interop_threads: int = 1
    seed: int = 0
    noise: str | None = None
    steps: tuple[int, ...] | None = None  # per-stage max steps (override)
    eval_clips: int | None = 300
    check_clips: int | None = 200  # 8 s validation mixes for the per-stage attention check
    test_limit: int | None = None  # test clips measured at shipping (None = all)
    subset_clips: int = SUBSET_CLIPS
    max_minutes: float | None = None  # this launch's wall-time budget
    smoke: bool = False  # tiny config and a few steps per stage: the whole recipe in seconds (tests)
    progress: bool = True
    command: str = ""


def recipe_stages(opts: RecipeOptions) -> list[Stage]:
    if opts.recipe not in RECIPES:
        raise KwsKdError(f"unknown recipe {opts.recipe!r}; expected one of {', '.join(RECIPES)}")
    stages = list(RECIPES[opts.recipe])
    if opts.smoke:
        stages = [replace(s, max_steps=2, batch_size=2, warmup_steps=1, eval_every=1) for s in stages]
    if opts.steps:
        if len(opts.steps) != len(stages):
            raise KwsKdError(f"--steps needs {len(stages)} values (one per stage: {', '.join(s.name for s in stages)})")
        stages = [replace(s, max_steps=int(n)) for s, n in zip(stages, opts.steps)]
    return stages


def _stage_options(opts: RecipeOptions, stage: Stage, out: Path, init_from: Path | None, minutes: float | None):
    return FinetuneOptions(
        data=opts.data, out=str(out), config=opts.config, init_from=str(init_from) if init_from else None,
        batch_size=stage.batch_size, lr=stage.lr, warmup_steps=stage.warmup_steps, max_steps=stage.max_steps,
        max_minutes=minutes, clip_seconds=(stage.clip_seconds,), val_seconds=stage.clip_seconds if stage.fresh_mix else None,
        fresh_mix=stage.fresh_mix, noise=opts.noise, eval_every=stage.eval_every, eval_clips=opts.eval_clips,
        save_every=min(50, stage.eval_every), seed=opts.seed, threads=opts.threads,
        interop_threads=opts.interop_threads, precision=opts.precision, progress=opts.progress, test=False,
    )


def _recipe_fingerprint(opts: RecipeOptions, manifest_hash: str, stages: list[Stage]) -> dict:
    return {"recipe": opts.recipe, "config": opts.config, "seed": opts.seed, "noise": opts.noise, "smoke": opts.smoke,
            "manifest_hash": manifest_hash, "stages": [asdict(s) for s in stages]}


def run_recipe(opts: RecipeOptions) -> tuple[int, dict]:
    """Run (or resume) the curriculum, then ship. Returns (exit code, recipe record)."""
    launch_t0 = time.time()
    if opts.smoke:
        opts.config = "tiny"
        opts.eval_clips = opts.check_clips = opts.test_limit = 8
        opts.subset_clips = min(opts.subset_clips, 4)
    set_threads(opts.threads, opts.interop_threads)
    work = Path(opts.work)
    dest = Path(opts.dest) if opts.dest else work / "ship"
    stages = recipe_stages(opts)
    manifest = load_dataset(opts.data)
    fingerprint = _recipe_fingerprint(opts, manifest.content_hash(), stages)
    record_path = work / RECIPE_JSON
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if record and record.get("fingerprint") != fingerprint:
        theirs = record.get("fingerprint", {})
        diff = sorted(k for k in fingerprint if theirs.get(k) != fingerprint[k])
        raise KwsKdError(f"{record_path}: made by another recipe setting (differs in {', '.join(diff)}); use another --work")
    record.setdefault("fingerprint", fingerprint)
    record.setdefault("stages", {})
    record.setdefault("launches", [])
    record["command"] = opts.command or record.get("command", "")
    launch = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "wall_seconds": 0.0}
    record["launches"].append(launch)
    work.mkdir(parents=True, exist_ok=True)

    def save_record() -> None:
        launch["wall_seconds"] = round(time.time() - launch_t0, 1)
        record["wall_seconds_total"] = round(sum(x["wall_seconds"] for x in record["launches"]), 1)
        atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    deadline = launch_t0 + 60.0 * opts.max_minutes if opts.max_minutes else None
    check_source = None
    prev_best: Path | None = None
    for i, stage in enumerate(stages):
        out = work / f"{i + 1}_{stage.name}"
        done = record["stages"].get(stage.name, {}).get("done")
        if not done:
            minutes = None if deadline is None else max(0.0, (deadline - time.time()) / 60.0)
            if minutes is not None and minutes <= 0:
                save_record()
                return _stopped(stage, out, "max-minutes", record)
            print(f"recipe stage {i + 1}/{len(stages)} {stage.name}: {stage.max_steps} steps of {stage.clip_seconds:g} s "
                  f"{'mixtures' if stage.fresh_mix else 'clean clips'}, batch {stage.batch_size}"
                  + (f", from {prev_best}" if prev_best else ", from scratch"), file=sys.stderr, flush=True)
            summary = finetune(_stage_options(opts, stage, out, prev_best, minutes))
            if summary["stop_reason"] != "max-steps" or summary["steps"] < stage.max_steps:
                record["stages"][stage.name] = {"done": False, "steps": summary["steps"],
                                                "train_seconds": summary["train_seconds"]}
                save_record()
                return _stopped(stage, out, summary["stop_reason"], record)
            if check_source is None:
                check_source = _test_source(manifest, opts.data, True, opts.noise, opts.seed, split="validation")
            best = load_teacher(out / BEST_DIR)
            t0 = time.time()
            focus = attention_focus(best, check_source, 8.0, limit=opts.check_clips, seed=opts.seed)
            meta = json.loads((out / BEST_DIR / TEACHER_JSON).read_text())
            record["stages"][stage.name] = {
                "done": True, "run": str(out), "init_from": str(prev_best) if prev_best else None,
                "steps": summary["steps"], "best_step": summary["best_step"],
                f"val_accuracy_{stage.clip_seconds:g}s{'' if stage.fresh_mix else '_clean'}": summary["best_val_metric"],
                "val_accuracy_8s_mix": focus["accuracy"], "val_clips_8s": focus["clips"],
                "rollout_mass_8s": {k: {m: focus[k][m] for m in ("mass", "chance", "ratio", "peak_in_span")}
                                    for k in TARGETS},
                "train_seconds": summary["train_seconds"], "check_seconds": round(time.time() - t0, 1),
                "best_checkpoint_hash": checkpoint_hash(out / BEST_DIR), "best_meta_step": meta.get("step"),
            }
            save_record()
            print(f"recipe stage {stage.name} done: best val {summary['best_val_metric']:.4f} at step "
                  f"{summary['best_step']}; 8 s val mixes acc {focus['accuracy']:.4f}, rollout in-span mass "
                  f"{focus['rollout']['mass']:.3f} (x{focus['rollout']['ratio']:.2f} chance)", file=sys.stderr, flush=True)
        prev_best = out / BEST_DIR

    last_run = work / f"{len(stages)}_{stages[-1].name}"
    extra = {
        "recipe": opts.recipe, "config": opts.config, "precision": opts.precision, "threads": opts.threads,
        "stages": record["stages"], "command": record["command"],
        "train_seconds_total": round(sum(s.get("train_seconds", 0.0) for s in record["stages"].values()), 1),
    }
    save_record()
    extra["wall_seconds_total"] = record["wall_seconds_total"]  # up to the measurement; ship time added below
    t0 = time.time()
    figures = ship(last_run, dest, opts.data, opts.test_limit, extra=extra, subset_clips=opts.subset_clips)
    record["shipped"] = {"dest": str(dest), "checkpoint_hash": figures["checkpoint_hash"],
                         "ship_seconds": round(time.time() - t0, 1)}
    save_record()
    # the wall time in metrics.json includes the measurement: rewrite it with the final total
    figures["wall_seconds_total"] = record["wall_seconds_total"]
    figures["launches"] = len(record["launches"])
    atomic_write_text(dest / "metrics.json", json.dumps(figures, indent=2) + "\n")
    _readable(dest)
    accs = ", ".join(f"{s:g} s {figures[f'test_accuracy_{s:g}s']:.3f}" for s in TEST_SECONDS)
    print(f"shipped {dest}: test accuracy {accs}"
          + f"; wall {record['wall_seconds_total'] / 60:.1f} min over {len(record['launches'])} launch(es)",
          file=sys.stderr, flush=True)
    return 0, record


def _stopped(stage: Stage, out: Path, reason: str, record: dict) -> tuple[int, dict]:
    print(f"recipe stopped ({reason}) in stage {stage.name} ({out}); run the same command again to continue",
          file=sys.stderr, flush=True)
    return INCOMPLETE, record


# -- command line ------------------------------------------------------------------------------------

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m export.ship_teacher", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, nargs="?", help="a finished `kws-kd teacher finetune` run folder to ship")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--dest", type=Path, default=None,
                   help=f"ship folder (default {DEFAULT_DEST} for RUN, WORK/ship for --recipe)")
    p.add_argument("--limit", type=int, default=None, help="test clips to measure (default all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-mb", type=float, default=10.0, help="refuse fp16 weights larger than this")
    r = p.add_argument_group("train first: the curriculum recipe")
    r.add_argument("--recipe", choices=tuple(RECIPES), default=None)
    r.add_argument("--work", type=Path, default=None, help="recipe folder: one run folder per stage, recipe.json")
    r.add_argument("--config", default="small-cpu-fast", help="teacher shape for every stage (default small-cpu-fast)")
    r.add_argument("--precision", choices=("float32", "bfloat16"), default="bfloat16")
    r.add_argument("--interop-threads", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--noise", default=None, help="noise folder for the mixtures (default: babble per split)")
    r.add_argument("--steps", type=int, nargs="+", default=None, help="max steps per stage (default: the recipe's)")
    r.add_argument("--eval-clips", type=int, default=300, help="validation clips per evaluation")
    r.add_argument("--check-clips", type=int, default=200, help="8 s validation mixes for each stage's attention check")
    r.add_argument("--max-minutes", type=float, default=None, help="this launch's wall-time budget (resume later)")
    r.add_argument("--smoke", action="store_true", help="tiny config, 2 steps per stage: the whole recipe in seconds")
    r.add_argument("--no-progress", action="store_true")
    p.add_argument("--verify", type=Path, default=None, metavar="DEST", help="re-measure DEST's subset_check")
    a = p.parse_args(argv)
    try:
        if a.verify:
            torch.set_num_threads(a.threads)
            res = verify(a.verify, a.data)
            print(json.dumps({k: res[k] for k in ("ok", "differences")}, indent=2))
            return 0 if res["ok"] else 1
        if a.recipe:
            if a.run is not None or not a.data or not a.work:
                p.error("--recipe needs --data and --work, and no RUN")
            command = shlex.join(["python", "-m", "export.ship_teacher", *argv])
            code, _ = run_recipe(RecipeOptions(
                data=a.data, work=str(a.work), dest=str(a.dest) if a.dest else None, recipe=a.recipe, config=a.config,
                precision=a.precision, threads=a.threads, interop_threads=a.interop_threads, seed=a.seed, noise=a.noise,
                steps=tuple(a.steps) if a.steps else None, eval_clips=a.eval_clips or None,
                check_clips=a.check_clips or None, test_limit=a.limit, max_minutes=a.max_minutes, smoke=a.smoke,
                progress=not a.no_progress, command=command))
            return code
        if a.run is None:
            p.error("give RUN, or --recipe, or --verify")
        torch.set_num_threads(a.threads)
        print(json.dumps(ship(a.run, a.dest or DEFAULT_DEST, a.data, a.limit, max_mb=a.max_mb), indent=2))
        return 0
    except KwsKdError as exc:
        print(f"python -m export.ship_teacher: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
