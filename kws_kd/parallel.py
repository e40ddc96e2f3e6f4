"""Several training runs at once, one child process each, each on its share of the cores.

Why: a student's training step on this 2-core CPU leaves one core idle about a
third of the time (small, dependent ops). Two single-thread runs side by side
finished TC-ResNet steps at 1.6x and CRNN steps at 1.8x the rate of one
2-thread run (`benchmarks/train_throughput.py --workers`). Experiments train
many independent runs (vanilla and distilled twins, seeds, students), so they
go through `run_parallel`.

Each child is `python -m kws_kd.parallel OPTIONS.json`: it trains one
`kws_kd.train.TrainOptions` and logs to `RUN.log` beside the run folder. Runs
resume as usual, so an interrupted batch of runs restarts where each one stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from kws_kd.atomic import atomic_write_text
from kws_kd.errors import KwsKdError

#: Seconds between the parent's status lines.
STATUS_EVERY = 60.0


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _log_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".log")


def _last_step(out: str | Path) -> int:
    try:
        rows = json.loads((Path(out) / "history.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(rows[-1]["step"]) if rows else 0


def run_parallel(jobs: list, workers: int = 2, log: Callable[[str], None] = print) -> None:
    """Train every `TrainOptions` of `jobs`, at most `workers` at a time; error naming the first run that failed.

    With one job or `workers` <= 1 the runs still go through child processes,
    one at a time with every core, so the calling process never holds their
    models.
    """
    pending = list(jobs)
    workers = max(1, min(workers, len(pending))) if pending else 1
    threads = threads_per_worker(workers)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    running: list[tuple[subprocess.Popen, object, object]] = []
    failed: list[str] = []
    last_status = time.monotonic()
    if pending:
        log(f"training {len(pending)} run(s), {workers} at a time, {threads} thread(s) each")
    while pending or running:
        while pending and len(running) < workers and not failed:
            opts = pending.pop(0)
            out = Path(opts.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            spec = out.with_name(out.name + ".options.json")
            atomic_write_text(spec, json.dumps(dataclasses.asdict(opts), indent=2) + "\n")
            handle = open(_log_path(out), "ab")
            proc = subprocess.Popen([sys.executable, "-m", "kws_kd.parallel", str(spec)], stdout=handle,
                                    stderr=subprocess.STDOUT, env=env)
            running.append((proc, opts, handle))
            log(f"  started {out} ({opts.model}, λ={opts.kd_lambda:g}, {opts.steps} steps); log: {_log_path(out)}")
        time.sleep(1.0)
        for item in list(running):
            proc, opts, handle = item
            if proc.poll() is None:
                continue
            handle.close()
            running.remove(item)
            if proc.returncode == 0:
                log(f"  finished {opts.out}")
            else:
                failed.append(f"{opts.out} (exit {proc.returncode}): {_tail(_log_path(opts.out))}")
        if failed and not running:
            break
        if running and time.monotonic() - last_status > STATUS_EVERY:
            last_status = time.monotonic()
            log("  " + "; ".join(f"{Path(o.out).parent.name}: step {_last_step(o.out)}/{o.steps}" for _, o, _ in running))
    if failed:
        raise KwsKdError(f"training failed: {failed[0]}")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").replace("\r", "\n").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


def _child(spec: str) -> int:
    from kws_kd.train import TrainOptions, train

    opts = TrainOptions(**json.loads(Path(spec).read_text()))
    try:
        train(opts, progress=True)
    except KwsKdError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
