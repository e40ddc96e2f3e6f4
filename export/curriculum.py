"""The teacher curriculum recipe: four chained fine-tune stages, checked, then shipped.

`run_recipe` runs four stages, each a `kws-kd teacher finetune` run in
WORK/<n>_<stage>/, each initialised from the previous stage's best
(`--init-from`): clean 1 s keywords, then fresh 2 s, 4 s and 8 s mixtures.
After each stage its best is checked on fixed 8 s validation mixes (accuracy
and in-span attention mass per target) into WORK/recipe.json. Re-running the
same options resumes: finished stages are skipped, an interrupted one resumes
from its saved state (exactly). When the last stage is done the result is
shipped (`export.shipping.ship`) with the per-stage records, the exact command
and the wall time summed over all launches. `INCOMPLETE` (exit code 3) means
the recipe stopped early (a time budget or a signal). The command line is
`python -m export.ship_teacher --recipe curriculum`.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from export.attention_check import TARGETS, attention_focus
from export.finetune import finetune
from export.finetune_runtime import set_threads
from export.finetune_setup import FinetuneOptions
from export.finetune_state import BEST_DIR
from export.shipping import SUBSET_CLIPS, TEST_SECONDS, make_readable, measurement_source, ship
from export.teacher_model import TEACHER_JSON, checkpoint_hash, load_teacher
from kws_kd.atomic import atomic_write_text
from kws_kd.data.load import load_dataset
from kws_kd.errors import KwsKdError

RECIPE_JSON = "recipe.json"
INCOMPLETE = 3  # exit code: the recipe stopped before its last stage finished


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: a fine-tune run at one clip length, clean or freshly mixed."""

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
    """Every option of `--recipe` (the `python -m export.ship_teacher --recipe` flags)."""

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
    """The stages `opts` runs: its recipe's, shrunk for --smoke, with --steps applied."""
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


def _stage_options(opts: RecipeOptions, stage: Stage, out: Path, init_from: Path | None,
                   minutes: float | None) -> FinetuneOptions:
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
                check_source = measurement_source(manifest, opts.data, True, opts.noise, opts.seed, split="validation")
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
    make_readable(dest)
    accs = ", ".join(f"{s:g} s {figures[f'test_accuracy_{s:g}s']:.3f}" for s in TEST_SECONDS)
    print(f"shipped {dest}: test accuracy {accs}"
          + f"; wall {record['wall_seconds_total'] / 60:.1f} min over {len(record['launches'])} launch(es)",
          file=sys.stderr, flush=True)
    return 0, record


def _stopped(stage: Stage, out: Path, reason: str, record: dict) -> tuple[int, dict]:
    print(f"recipe stopped ({reason}) in stage {stage.name} ({out}); run the same command again to continue",
          file=sys.stderr, flush=True)
    return INCOMPLETE, record
