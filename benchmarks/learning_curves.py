"""Learning curves at 8 s: validation accuracy against steps, per student, vanilla and distilled, scratch and warm.

Every curve is one cached experiment stage (`kws_kd.student_stages.student_run`,
not exported), so an interrupted invocation resumes where it stopped and a
rerun with more students reuses the finished ones. "warm" runs start from the
student's shared pre-training on clean 1 s keywords (`pretrain_run`); vanilla
and distilled runs of one student start from the same weights.

    python benchmarks/learning_curves.py [--students ...] [--seconds 8] [--steps 1500] [--eval-every 100]
        [--lambdas 0 0.25] [--inits scratch warm] [--pretrain-steps 1500] [--out runs/curves]
        [--figure docs/figures/learning_curves.png] [--json docs/learning_curves.json]

The figure has one panel per student; the JSON holds every curve, the test
accuracy of each run's best-on-validation weights (reported, never used to
choose anything), and each stage's wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = ("tc_resnet", "crnn", "lstm_p", "att_rnn", "mhatt_rnn")
STYLE = {("scratch", 0.0): ("tab:gray", "--"), ("scratch", "kd"): ("tab:blue", "--"),
         ("warm", 0.0): ("tab:gray", "-"), ("warm", "kd"): ("tab:blue", "-")}


def run_curves(args) -> dict:
    from kws_kd.experiment import ExperimentOptions, noisy_data, teacher_folder, teacher_store
    from kws_kd.student_stages import pretrain_run, student_finished, student_run
    from kws_kd.stages import StageRunner

    runner = StageRunner(Path(args.out) / "stages")
    base = ExperimentOptions(seconds=args.seconds, steps=args.steps, batch_size=args.batch_size,
                             eval_every=args.eval_every, seed=args.seed, rollout_layers=args.rollout_layers,
                             precision=args.precision, pretrain_steps=args.pretrain_steps,
                             pretrain_batch_size=args.pretrain_batch_size,
                             learning_rates=tuple(args.learning_rates) if args.learning_rates else None)
    data = noisy_data(base, runner)
    teacher, teacher_stages = teacher_folder(base, runner, data)
    store, store_stage = teacher_store(base, runner, data, teacher, teacher_stages)
    curves, pretrain, not_run = [], {}, []
    for model in args.students:
        for init in args.inits:
            opts = base if init == "warm" else ExperimentOptions(**{**base.__dict__, "pretrain_steps": 0})
            lambdas = list(args.lambdas)
            if args.finished_only:
                done = [lam for lam in lambdas if student_finished(opts, runner, model, lam, data, store, [store_stage],
                                                                   seed=args.seed, ship=False)]
                not_run += [{"model": model, "init": init, "kd_lambda": lam} for lam in lambdas if lam not in done]
                lambdas = done
            if init == "warm" and lambdas:
                stage = pretrain_run(opts, runner, model, seed=args.seed)
                pretrain[model] = {**stage.summary, "seconds": stage.seconds}
            for lam in lambdas:
                t0 = time.monotonic()
                stage = student_run(opts, runner, model, lam, data, store, [store_stage], seed=args.seed, ship=False)
                s = stage.summary
                curves.append({"model": model, "init": init, "kd_lambda": lam, "seed": args.seed,
                               "history": s["history"], "best_val": s["best_val_metric"],
                               "test_accuracy": s["float_metric"], "attention": s["attention"],
                               "seconds": stage.seconds, "cached": stage.cached})
                print(f"{model:10s} {init:7s} λ={lam:<5g} best val {s['best_val_metric']:.3f}  test "
                      f"{s['float_metric']:.3f}  ({stage.seconds / 60:.1f} min{', cached' if stage.cached else ''}; "
                      f"{time.monotonic() - t0:.0f} s now)", flush=True)
    return {"options": {k: v for k, v in vars(args).items() if k not in ("func",)},
            "data": data.summary, "curves": curves, "pretrain": pretrain, "not_run": not_run}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kws_kd.atomic import atomic_path

    models = list(dict.fromkeys(c["model"] for c in result["curves"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.4), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        for c in (c for c in result["curves"] if c["model"] == model):
            color, style = STYLE[(c["init"], 0.0 if c["kd_lambda"] == 0 else "kd")]
            steps = [r["step"] for r in c["history"]]
            vals = [100 * r["val_metric"] for r in c["history"]]
            ax.plot(steps, vals, style, color=color, label=f"{c['init']}, λ={c['kd_lambda']:g}")
        ax.axhline(100 / 12, color="k", lw=0.6, ls=":")
        ax.set_title(model)
        ax.set_xlabel("step (batch %d)" % result["options"]["batch_size"])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy (%)")
    fullest = max(range(len(models)), key=lambda i: sum(c["model"] == models[i] for c in result["curves"]))
    axes[0][fullest].legend(fontsize=8, loc="lower right")  # the panel with every kind of curve
    o = result["options"]
    fig.suptitle(f"{o['seconds']:g} s Noisy Speech Commands (shared real speakers), seed {o['seed']}; "
                 f"warm = {o['pretrain_steps']} steps on clean 1 s first; dotted: chance", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 0.25])
    ap.add_argument("--inits", nargs="+", default=["scratch", "warm"], choices=("scratch", "warm"))
    ap.add_argument("--pretrain-steps", type=int, default=1500)
    ap.add_argument("--pretrain-batch-size", type=int, default=64)
    ap.add_argument("--learning-rates", type=float, nargs="+", default=None,
                    help="Adam piecewise schedule (default: kws_kd.experiment.training_recipe)")
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    ap.add_argument("--rollout-layers", default="1:")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/curves", help="stage cache (resumable)")
    ap.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "learning_curves.png"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "learning_curves.json"))
    ap.add_argument("--finished-only", action="store_true",
                    help="report the curves whose runs have finished and list the others as not run (trains nothing)")
    args = ap.parse_args(argv)

    from kws_kd.atomic import atomic_write_text

    result = run_curves(args)
    atomic_write_text(Path(args.json), json.dumps(result, indent=2, default=str) + "\n")
    plot(result, Path(args.figure))
    print(f"wrote {args.json} and {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
