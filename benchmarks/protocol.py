"""The paper's experiment grid, shared by reproduce_table1.py (FSD50K) and reproduce_table2.py (Noisy KWS).

students x lambda x (clip length) x seeds, each run a cached stage, reported as
mean ± std over seeds with the teacher row, as markdown + JSON + CSV.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import csv
import io
import json
import shlex
import time
from pathlib import Path
from typing import Callable

import numpy as np

from kws_kd.atomic import atomic_write_text
from kws_kd.data.load import load_dataset
from kws_kd.experiment import DataRef, ExperimentOptions, teacher_folder, teacher_metrics, teacher_store
from kws_kd.student_stages import pretrain_run, student_run, train_ahead
from kws_kd.options import add_arguments, from_namespace
from kws_kd.stages import StageRunner

ALL_STUDENTS = ("lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn")


#: ExperimentOptions fields a grid takes from the command line.
GRID_FLAGS = ("steps", "batch_size", "eval_every", "teacher", "rollout_layers", "rollout_mode",
              "max_clips_per_label", "learning_rates", "teacher_first_frame", "pretrain_steps",
              "pretrain_batch_size", "precision")


def add_grid_arguments(p: argparse.ArgumentParser, **defaults) -> None:
    """The grid's own flags, plus `GRID_FLAGS` from `ExperimentOptions` (with this table's `defaults`)."""
    p.add_argument("--students", nargs="+", default=list(ALL_STUDENTS))
    p.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 0.1, 0.25, 0.5])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--notes", default=None, metavar="FILE.md",
                   help="markdown appended to the report under '## Notes' (a reading of the numbers)")
    p.add_argument("--long-only", nargs="*", default=[], metavar="STUDENT",
                   help="students trained only at the longest clip length (saves CPU)")
    p.add_argument("--workers", type=int, default=2, help="training runs side by side (kws_kd.parallel)")
    add_arguments(p, ExperimentOptions, only=GRID_FLAGS, defaults=defaults)


def grid_options(args: argparse.Namespace) -> ExperimentOptions:
    """The experiment options of a grid invocation (clip length set per column by `run_grid`)."""
    return from_namespace(ExperimentOptions, args)


def run_grid(args: argparse.Namespace, lengths: list[float | None],
             make_data: Callable[[ExperimentOptions, StageRunner], DataRef]) -> dict:
    """Train every (length, student, lambda, seed); the teacher row per length comes from the store."""
    start = time.monotonic()
    base = grid_options(args)
    runner = StageRunner(Path(args.out) / "stages")
    rows, teacher_rows, data, stage_seconds = [], {}, None, 0.0
    for seconds in lengths:
        opts = replace(base, seconds=seconds or 0.0)
        data = make_data(opts, runner)
        teacher, teacher_stages = teacher_folder(opts, runner, data)
        store, store_stage = teacher_store(opts, runner, data, teacher, teacher_stages)
        stage_seconds += store_stage.seconds + (data.stage.seconds if data.stage else 0.0)
        manifest = load_dataset(data.path)
        teacher_rows[str(seconds)] = teacher_metrics(store, manifest, manifest.clip_seconds or seconds or 0.0)
        longest = seconds == max(lengths, key=lambda x: x or 0.0)
        models = [m for m in args.students if longest or m not in args.long_only]
        jobs = [{"model": m, "kd_lambda": lam, "data": data, "store": store, "store_stages": [store_stage],
                 "seed": seed, "ship": False} for m in models for lam in args.lambdas for seed in args.seeds]
        train_ahead(opts, runner, jobs, workers=args.workers)
        for model in models:
            for seed in args.seeds:
                init = pretrain_run(opts, runner, model, seed=seed)
                stage_seconds += (init.summary.get("train_seconds") or init.seconds) if init else 0.0
        for model in models:
            for lam in args.lambdas:
                for seed in args.seeds:
                    stage = student_run(opts, runner, model, lam, data, store, [store_stage], seed=seed, ship=False)
                    s = stage.summary
                    # the run's own training time (also when cached or trained in a worker), else its stage's
                    stage_seconds += s.get("train_seconds") or stage.seconds
                    att = s["attention"] or {}
                    rows.append({"seconds": seconds, "model": model, "kd_lambda": lam, "seed": seed,
                                 "metric": s["metric"], "value": s["float_metric"],
                                 "attention_ratio_to_chance": att.get("ratio_to_chance"),
                                 "mass_in_span": att.get("mass_in_span")})
    return {"rows": rows, "teacher": teacher_rows, "clips": data.summary.get("clips"),
            "source": data.summary.get("source"), "wall_seconds": time.monotonic() - start,
            "stage_seconds": stage_seconds}


def _cells(rows, seconds, model, lambdas, key):
    out = []
    for lam in lambdas:
        v = [r[key] for r in rows if r["seconds"] == seconds and r["model"] == model and r["kd_lambda"] == lam
             and r[key] is not None]
        out.append(v)
    return out


def mean_std(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "-"
    v = scale * np.asarray(values, float)
    digits = 2 if scale > 1 else 4
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"  # one seed: no spread to state
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def tables(result: dict, args, lengths, metric_scale: float) -> list[str]:
    rows, lambdas = result["rows"], args.lambdas
    head = ["| D | model | " + " | ".join(f"λ={lam:g}" for lam in lambdas) + " |", "|" + "---|" * (2 + len(lambdas))]
    lines = list(head)
    for seconds in lengths:
        d = "full" if seconds is None else f"{seconds:g} s"
        t = result["teacher"][str(seconds)]
        digits = 2 if metric_scale > 1 else 4
        lines.append(f"| {d} | teacher (wav2vec 2.0) | {metric_scale * t['value']:.{digits}f} |" + " |" * (len(lambdas) - 1))
        for model in args.students:
            values = _cells(rows, seconds, model, lambdas, "value")
            if not any(values):  # not trained at this length (--long-only)
                continue
            cells = [mean_std(v, metric_scale) for v in values]
            lines.append(f"| {d} | {model} | " + " | ".join(cells) + " |")
    if any(r["attention_ratio_to_chance"] is not None for r in rows):
        lines += ["", "Attention mass each student puts inside the keyword span, as a multiple of chance "
                      "(mean over seeds; the teacher's in the first row of each length):", ""] + head
        for seconds in lengths:
            t = result["teacher"][str(seconds)]["attention"] or {}
            lines.append(f"| {seconds:g} s | teacher | {t.get('ratio_to_chance', float('nan')):.2f} |" + " |" * (len(lambdas) - 1))
            for model in args.students:
                values = _cells(rows, seconds, model, lambdas, "attention_ratio_to_chance")
                if not any(values):
                    continue
                cells = [f"{np.mean(v):.2f}" if v else "-" for v in values]
                lines.append(f"| {seconds:g} s | {model} | " + " | ".join(cells) + " |")
    return lines


def findings(result: dict, args, lengths) -> list[str]:
    """Does the best lambda beat vanilla on the mean, per student and length?"""
    if 0.0 not in args.lambdas or len(args.lambdas) < 2:
        return []
    out, gaps = [], {}
    for seconds in lengths:
        for model in args.students:
            means = {lam: np.mean(v) if v else np.nan
                     for lam, v in zip(args.lambdas, _cells(result["rows"], seconds, model, args.lambdas, "value"))}
            best = max((lam for lam in args.lambdas if lam > 0), key=lambda lam: means[lam])
            gap = 100 * (means[best] - means[0.0])
            if np.isnan(gap):
                continue
            d = "full" if seconds is None else f"{seconds:g} s"
            verdict = f"beats vanilla by {gap:+.2f} points" if gap > 0 else f"does not beat vanilla ({gap:+.2f} points)"
            out.append(f"{d}, {model}: best λ={best:g} {verdict}")
            gaps.setdefault(model, {})[seconds] = gap
    numeric = sorted(s for s in lengths if s is not None)
    if len(numeric) >= 2:
        short, long_ = numeric[0], numeric[-1]
        for model, g in gaps.items():
            if short in g and long_ in g:
                larger = g[long_] > g[short]
                out.append(f"{model}: the KD gap is {'larger' if larger else 'not larger'} at {long_:g} s "
                           f"({g[long_]:+.2f}) than at {short:g} s ({g[short]:+.2f})")
    return out


def recipe_text(opts: ExperimentOptions) -> str:
    """The optimizer / schedule the runs used, in words (kws_kd.experiment.training_recipe)."""
    from kws_kd.experiment import SHORT_RUN_LEARNING_RATES, SHORT_RUN_STEPS
    from kws_kd.students.registry import STUDENTS

    if opts.learning_rates:
        return "Adam, piecewise " + ", ".join(f"{x:g}" for x in opts.learning_rates)
    if opts.steps >= SHORT_RUN_STEPS:
        return "the paper's per-student optimizer and schedule (kws_kd.train defaults)"
    over = "; ".join(f"{name} {dict(spec.short_run_config)}" for name, spec in STUDENTS.items() if spec.short_run_config)
    return ("short-run recipe: Adam, piecewise " + ", ".join(f"{x:g}" for x in SHORT_RUN_LEARNING_RATES)
            + f" over equal thirds; config overrides: {over}")


def write_report(result: dict, args, lengths, argv: list[str], *, script: str, title: str, metric: str,
                 metric_scale: float, paper: list[str]) -> str:
    opts = grid_options(args)
    out = Path(args.out)
    atomic_write_text(out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
    if result["rows"]:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(result["rows"][0].keys()))
        w.writeheader()
        w.writerows(result["rows"])
        atomic_write_text(out / "results.csv", buf.getvalue())
    command = f"python benchmarks/{script} " + " ".join(shlex.quote(a) for a in argv)
    full = opts.steps >= 20000 and opts.batch_size >= 100
    scale = "the paper's full protocol" if full else (
        f"CPU scale, {opts.steps} steps of batch {opts.batch_size} per run (the paper: 20,000 of batch 100)")
    md = [f"# {title} ({metric})", "", f"Command: `{command.strip()}`", "",
          f"- Scale: {scale}; seeds {args.seeds}; " + ("mean ± std over seeds." if len(args.seeds) > 1 else "one run per cell (no spread)."),
          f"- Data: {result.get('source')}; clips per split {result.get('clips')}.",
          f"- Teacher target: rollout layers {opts.rollout_layers}, mode {opts.rollout_mode}, "
          f"frame 0 (c_1's self-share): {opts.teacher_first_frame}.",
          f"- Training recipe: {recipe_text(opts)}; precision {opts.precision}.",
          f"- Init: " + (f"every student and seed first trained {opts.pretrain_steps} steps of batch "
                         f"{opts.pretrain_batch_size} on the clean 1 s keywords; its vanilla and distilled runs "
                         f"start from those weights (warm start)." if opts.pretrain_steps else "random (from scratch)."),
          f"- Time: {result.get('stage_seconds', 0.0) / 60:.1f} min summed over the data and teacher-store stages and "
          f"every run's training (pre-training included; each its own time, also when this invocation found it "
          f"cached; runs trained {args.workers} at a time on one core each); this invocation "
          f"{result['wall_seconds'] / 60:.1f} min wall.",
          "- Figures from small offline data are NOT comparable with the paper's numbers.", ""]
    md += tables(result, args, lengths, metric_scale) + ["", "## Findings", ""]
    md += [f"- {f}" for f in findings(result, args, lengths)] + ["", "Paper: " + "; ".join(paper)]
    if getattr(args, "notes", None):
        notes = Path(args.notes)
        if not notes.is_file():
            raise SystemExit(f"--notes {notes}: no such file")
        md += ["", "## Notes", "", notes.read_text().strip()]
    text = "\n".join(md) + "\n"
    atomic_write_text(args.report, text)
    return text
