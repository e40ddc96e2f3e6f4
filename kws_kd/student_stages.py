"""Training stages of an experiment: the shared pre-training, one student run, and training them side by side.

Each is a cached stage (`kws_kd.stages`) keyed by its options and inputs. A
stage is *planned* before it runs (`RunPlan`: its folder and the
`TrainOptions` it trains), so `train_ahead` can train the unfinished runs of
many stages in child processes, two at a time (`kws_kd.parallel`), and the
`student_run` calls that follow only evaluate and ship them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from kws_kd.errors import KwsKdError
from kws_kd.experiment import DataRef, ExperimentOptions, clean_data, training_recipe
from kws_kd.stages import StageResult, StageRunner


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


def student_finished(opts: ExperimentOptions, runner: StageRunner, model: str, kd_lambda: float, data: DataRef,
                     store: Path | None, store_stages: list[StageResult] | None = None, *, seed: int | None = None,
                     ship: bool = True) -> bool:
    """Whether `student_run` with these arguments would find its stage finished (nothing trains)."""
    seed = opts.seed if seed is None else seed
    plan = _student_plan(opts, runner, model, kd_lambda, data, store, store_stages, seed, ship)
    return runner.is_finished(plan.stage.name, plan.params, plan.upstream)


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
    from kws_kd.students import get_spec
    from kws_kd.tflite.export import export_run

    # A recurrence that can stream ships as a streaming file: one 20 ms frame of graph
    # instead of a 399-frame unrolled one (seconds to convert instead of minutes).
    streaming = get_spec(model).streamable
    tflite = folder / f"{model}_int8{'_streaming' if streaming else ''}.tflite"
    export_run(run_dir, tflite, quantize="int8", calibration_clips=opts.calibration_clips,
               verify_clips=min(100, opts.calibration_clips), streaming=streaming)
    int8 = evaluate_tflite(tflite, str(data), "test")
    latency = host_latency(tflite, threads=1, runs=opts.bench_runs, warmup=min(10, opts.bench_runs))
    return {"int8_metric": int8.get(metric), "int8_size_bytes": tflite.stat().st_size, "streaming": streaming,
            "int8_latency_ms": latency["median_ms"], "int8_latency_p90_ms": latency["p90_ms"], "tflite": str(tflite)}
