"""Process-level plumbing of the fine-tune loop: threads, precision, stop signals, progress lines.

None of it is about the model or the data: torch thread counts (inter-op can
be set once per process), the bfloat16 autocast context of the forward pass,
SIGTERM/SIGINT turned into a clean stop after the current step, and the plain
progress line printed off a terminal instead of a redrawn bar. The curriculum
and the benchmarks use the same helpers.

torch-only: never imports TensorFlow.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import nullcontext

import torch

from kws_kd.errors import KwsKdError

PRECISIONS = ("float32", "bfloat16")


def set_threads(threads: int | None, interop: int | None) -> None:
    """torch intra-op and inter-op threads. Inter-op can be set once per process, before any parallel work:
    a later, different request is reported (one line) and ignored."""
    if threads:
        torch.set_num_threads(int(threads))
    if interop and torch.get_num_interop_threads() != int(interop):
        try:
            torch.set_num_interop_threads(int(interop))
        except RuntimeError:
            print(f"note: torch inter-op threads stay {torch.get_num_interop_threads()} "
                  f"(they can be set only once per process, before parallel work)", file=sys.stderr)


def autocast(precision: str, device: str | torch.device) -> object:
    """The forward pass's precision context: bfloat16 autocast, or nothing for float32."""
    if precision not in PRECISIONS:
        raise KwsKdError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


class ProgressLog:
    """Off a terminal: one plain progress line every `every_s` seconds instead of a redrawn bar."""

    def __init__(self, every_s: float, total: int, start_step: int, enabled: bool):
        self.every_s, self.total, self.start_step = every_s, total, start_step
        self.enabled = enabled and every_s > 0
        self.t0 = self.last = time.monotonic()

    def maybe(self, step: int, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.every_s):
            return
        self.last = now
        done = step - self.start_step
        per = (now - self.t0) / done if done > 0 else float("nan")
        eta = per * (self.total - step) if done > 0 else float("nan")
        print(f"finetune step {step}/{self.total} ({100.0 * step / max(1, self.total):.0f}%) {text} | "
              f"{per:.2f} s/step | elapsed {_hms(now - self.t0)}, eta {_hms(eta)}", file=sys.stderr, flush=True)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class StopFlag:
    """SIGTERM/SIGINT ask the loop to stop after the current step (state gets saved)."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.stop:  # second signal: give up at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
