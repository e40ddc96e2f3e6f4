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

The pieces: `export/shipping.py` (ship, measure, verify) and
`export/curriculum.py` (the stages and `run_recipe`); this file is the command
line, and re-exports their public names.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from export.curriculum import (
    CURRICULUM,
    INCOMPLETE,
    RECIPE_JSON,
    RECIPES,
    RecipeOptions,
    Stage,
    recipe_stages,
    run_recipe,
)
from export.shipping import (
    KEEP,
    SUBSET_CLIPS,
    SUBSET_TOLERANCE,
    TEST_SECONDS,
    compare_subset_check,
    make_readable,
    measure,
    measurement_source,
    ship,
    subset_check,
    verify,
)
from kws_kd.errors import KwsKdError

__all__ = [
    "CURRICULUM", "DEFAULT_DEST", "INCOMPLETE", "KEEP", "RECIPES", "RECIPE_JSON", "SUBSET_CLIPS", "SUBSET_TOLERANCE",
    "TEST_SECONDS", "RecipeOptions", "Stage", "compare_subset_check", "main", "make_readable", "measure",
    "measurement_source", "recipe_stages", "run_recipe", "ship", "subset_check", "verify",
]

DEFAULT_DEST = Path(__file__).resolve().parent / "reference_teacher"
_test_source = measurement_source  # the name the tests (and older callers) import


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
