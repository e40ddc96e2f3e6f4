"""The paper's experiment grid, shared by reproduce_table1.py (FSD50K) and reproduce_table2.py (Noisy KWS).

students x lambda x (clip length) x seeds, each run a cached stage, reported as
mean ± std over seeds with the teacher row, as markdown + JSON + CSV.
"""

from __future__ import annotations

import argparse
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
from kws_kd.experiment import (DataRef, ExperimentOptions, pretrain_run, student_run, teacher_folder, teacher_metrics,
                               teacher_store, train_ahead)
from kws_kd.stages import StageRunner

ALL_STUDENTS = ("lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn")


def add_grid_arguments(p: argparse.ArgumentParser, *, steps: int, batch_size: int, eval_every: int) -> None:
    p.add_argument("--students", nargs="+", default=list(ALL_STUDENTS))
    p.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 0.1, 0.25, 0.5])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=steps, help="paper: 20000")
    p.add_argument("--batch-size", type=int, default=batch_size, help="paper: 100")
    p.add_argument("--eval-every", type=int, default=eval_every, help="paper: 400")
    p.add_argument("--teacher", default=None, help="teacher folder (default: the shipped reference teacher)")
    p.add_argument("--rollout-layers", default="all", help="teacher layers in the target")
    p.add_argument("--rollout-mode", default="rollout", choices=("rollout", "last_layer"))
    p.add_argument("--max-clips-per-label", type=int, default=None, help="subsample each split (smoke runs)")
    p.add_argument("--learning-rates", type=float, nargs="+", default=None,
                   help="Adam piecewise schedule for every student (default: kws_kd.experiment.training_recipe)")
    p.add_argument("--teacher-first-frame", choices=("neighbour", "keep"), default="neighbour",
                   help="teacher frame 0 (c_1's self-share) in the target: replaced by frame 1, or kept")
    p.add_argument("--notes", default=None, metavar="FILE.md",
                   help="markdown appended to the report under '## Notes' (a reading of the numbers)")
    p.add_argument("--long-only", nargs="*", default=[], metavar="STUDENT",
                   help="students trained only at the longest clip length (saves CPU)")
    p.add_argument("--pretrain-steps", type=int, default=0,
                   help="> 0: each student and seed first trains this many steps on the clean 1 s keywords, and "
                        "every run of that student and seed starts from it (0: from scratch)")
    p.add_argument("--pretrain-batch-size", type=int, default=64)
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32",
                   help="training graph precision")
    p.add_argument("--workers", type=int, default=2, help="training runs side by side (kws_kd.parallel)")


def run_grid(args: argparse.Namespace, lengths: list[float | None],
             make_data: Callable[[ExperimentOptions, StageRunner], DataRef]) -> dict:
    """Train every (length, student, lambda, seed); the teacher row per length comes from the store."""
    start = time.monotonic()
    runner = StageRunner(Path(args.out) / "stages")
    rows, teacher_rows, data, stage_seconds = [], {}, None, 0.0
    for seconds in lengths:
        opts = ExperimentOptions(
            data=getattr(args, "data", "auto"), noise=getattr(args, "noise", None), seconds=seconds or 0.0,
            steps=args.steps, batch_size=args.batch_size, eval_every=args.eval_every, teacher=args.teacher,
            rollout_layers=args.rollout_layers, rollout_mode=args.rollout_mode,
            max_clips_per_label=args.max_clips_per_label, teacher_first_frame=args.teacher_first_frame,
            learning_rates=tuple(args.learning_rates) if args.learning_rates else None,
            pretrain_steps=args.pretrain_steps, pretrain_batch_size=args.pretrain_batch_size,
            precision=args.precision,
        )
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
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


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


def recipe_text(args) -> str:
    """The optimizer / schedule the runs used, in words (kws_kd.experiment.training_recipe)."""
    from kws_kd.experiment import SHORT_RUN_LEARNING_RATES, SHORT_RUN_STEPS, SHORT_RUN_STUDENT_CONFIG

    if args.learning_rates:
        return "Adam, piecewise " + ", ".join(f"{x:g}" for x in args.learning_rates)
    if args.steps >= SHORT_RUN_STEPS:
        return "the paper's per-student optimizer and schedule (kws_kd.train defaults)"
    over = "; ".join(f"{m} {c}" for m, c in SHORT_RUN_STUDENT_CONFIG.items())
    return ("short-run recipe: Adam, piecewise " + ", ".join(f"{x:g}" for x in SHORT_RUN_LEARNING_RATES)
            + f" over equal thirds; config overrides: {over}")


def write_report(result: dict, args, lengths, argv: list[str], *, script: str, title: str, metric: str,
                 metric_scale: float, paper: list[str]) -> str:
    out = Path(args.out)
    atomic_write_text(out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
    if result["rows"]:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(result["rows"][0].keys()))
        w.writeheader()
        w.writerows(result["rows"])
        atomic_write_text(out / "results.csv", buf.getvalue())
    command = f"python benchmarks/{script} " + " ".join(shlex.quote(a) for a in argv)
    full = args.steps >= 20000 and args.batch_size >= 100
    scale = "the paper's full protocol" if full else (
        f"CPU scale, {args.steps} steps of batch {args.batch_size} per run (the paper: 20,000 of batch 100)")
    md = [f"# {title} ({metric})", "", f"Command: `{command.strip()}`", "",
          f"- Scale: {scale}; seeds {args.seeds}; mean ± std over seeds.",
          f"- Data: {result.get('source')}; clips per split {result.get('clips')}.",
          f"- Teacher target: rollout layers {args.rollout_layers}, mode {args.rollout_mode}, "
          f"frame 0 (c_1's self-share): {args.teacher_first_frame}.",
          f"- Training recipe: {recipe_text(args)}; precision {args.precision}.",
          f"- Init: " + (f"every student and seed first trained {args.pretrain_steps} steps of batch "
                         f"{args.pretrain_batch_size} on the clean 1 s keywords; its vanilla and distilled runs "
                         f"start from those weights (warm start)." if args.pretrain_steps else "random (from scratch)."),
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
