"""Keras model -> .tflite, with the TensorFlow converter isolated in a child process.

Path (FACTS §5): `model.export(dir, format="tf_saved_model")` with an explicit
batch-1 `input_signature` (Keras forces batch None otherwise, which breaks
recurrent conversion), then `TFLiteConverter.from_saved_model` in a child
process with TFLITE_BUILTINS only (no Flex ops, so every file runs in plain
LiteRT). A converter crash (e.g. the int8-calibration segfault) becomes a
`KwsKdError` naming the model and mode; outputs are written atomically.

Modes:
- float32: no optimisation.
- float16: weights stored as float16, computed in float32.
- dynamic: int8 weights, float activations (dynamic-range quantization).
- int8: full integer quantization calibrated on a representative set, except
  the MFCC front end, which stays float (`features.front_end_scopes`, selective
  quantization in `_child`). I/O is float32 by default (raw audio in, logits out); `int8_io=True`
  makes the input int8 audio, i.e. 8-bit audio (measured in docs/export.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.atomic import atomic_path
from kws_kd.errors import KwsKdError
from kws_kd.tflite import MODES

# How the child is started (`python <CHILD...> SAVED_MODEL MODE=OUT ...`); tests swap it for a crasher.
CHILD = ["-m", "kws_kd.tflite._child"]


def export_saved_model(model, directory: str | os.PathLike, label: str | None = None) -> list[int]:
    """Write `model` as a SavedModel with a batch-1 float32 signature; return the input shape."""
    import tensorflow as tf

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    spec = tf.TensorSpec(shape, tf.float32, name="audio")
    try:
        model.export(str(directory), format="tf_saved_model", input_signature=[spec], verbose=False)
    except Exception as exc:  # noqa: BLE001 - a tracing failure is reported in one line
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise KwsKdError(f"{label or model.name}: SavedModel export failed: {type(exc).__name__}: {first}") from None
    return shape


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"


@dataclass(frozen=True)
class Job:
    """One conversion: a SavedModel folder, a mode, an output path, and the name used in errors."""

    saved_model: Path
    mode: str
    out: Path
    label: str = "model"


def run_jobs(
    jobs: list[Job],
    *,
    representative: np.ndarray | dict[str, np.ndarray] | None = None,
    int8_io: bool = False,
    float_scopes: list[str] | None = None,
    timeout_s: float = 3600,
) -> list[Path]:
    """Run every job in ONE child process (one TensorFlow import); outputs renamed into place on success.

    The first failing job raises `KwsKdError` naming its label and mode, and no
    output of the batch is written.
    """
    for job in jobs:
        if job.mode not in MODES:
            raise KwsKdError(f"unknown quantization mode {job.mode!r} (choose from {', '.join(MODES)})")
        if job.mode == "int8" and (representative is None or len(representative) == 0):
            raise KwsKdError(f"{job.label}: int8 quantization needs a non-empty representative set")
    with tempfile.TemporaryDirectory(prefix="kws-kd-convert-") as tmp, contextlib.ExitStack() as stack:
        tmp_outs = [stack.enter_context(atomic_path(job.out)) for job in jobs]
        cmd = [sys.executable, *CHILD]
        cmd += [f"{job.saved_model}::{job.mode}={t}" for job, t in zip(jobs, tmp_outs)]
        if representative is not None and any(job.mode == "int8" for job in jobs):
            if isinstance(representative, dict):  # several named inputs (streaming files)
                rep_path = Path(tmp) / "representative.npz"
                np.savez(rep_path, **{k: np.asarray(v, np.float32) for k, v in representative.items()})
            else:
                rep_path = Path(tmp) / "representative.npy"
                np.save(rep_path, np.asarray(representative, dtype=np.float32))
            cmd += ["--representative", str(rep_path)]
        if int8_io:
            cmd.append("--int8-io")
        for scope in float_scopes or []:
            cmd += ["--float-scope", scope]
        what = ", ".join(sorted({f"{j.label} {j.mode}" for j in jobs}))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise KwsKdError(f"TFLite conversion ({what}) timed out after {timeout_s:.0f} s") from None
        done = {int(ln.split()[1]) for ln in proc.stdout.splitlines() if ln.startswith("done ")}
        failed = next((j for i, j in enumerate(jobs) if i not in done), None)
        name = failed.label if failed else jobs[-1].label
        mode = failed.mode if failed else jobs[-1].mode
        if proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            raise KwsKdError(f"{name}: the TFLite converter crashed ({sig}) converting to {mode}; no file written")
        if proc.returncode != 0 or failed is not None:
            raise KwsKdError(f"{name}: TFLite conversion to {mode} failed: {_last_error_line(proc.stderr)}")
        for job, t in zip(jobs, tmp_outs):
            if t.stat().st_size == 0:
                raise KwsKdError(f"{job.label}: TFLite conversion to {job.mode} produced an empty file")
    return [job.out for job in jobs]


def convert_saved_model(
    saved_model: str | os.PathLike,
    outputs: dict[str, str | os.PathLike],
    *,
    representative: np.ndarray | None = None,
    int8_io: bool = False,
    label: str = "model",
    float_scopes: list[str] | None = None,
    timeout_s: float = 3600,
) -> dict[str, Path]:
    """Convert `saved_model` to every `{mode: out_path}` in one child process."""
    jobs = [Job(Path(saved_model), mode, Path(out), label) for mode, out in outputs.items()]
    run_jobs(jobs, representative=representative, int8_io=int8_io, float_scopes=float_scopes, timeout_s=timeout_s)
    return {job.mode: job.out for job in jobs}


def convert_model(
    model,
    outputs: dict[str, str | os.PathLike],
    *,
    representative: np.ndarray | None = None,
    int8_io: bool = False,
    label: str | None = None,
    float_scopes: list[str] | None = None,
    timeout_s: float = 3600,
) -> dict[str, Path]:
    """Convert an in-memory Keras model (audio [1, samples] -> logits) to each `{mode: path}`.

    `float_scopes` defaults to the model's MFCC front-end layer: in int8 mode
    those ops stay float (see `_child._selective_int8`).
    """
    from kws_kd.features import dynamic_range_safe, front_end_scopes

    label = label or model.name
    if float_scopes is None:
        float_scopes = front_end_scopes(model)
    with tempfile.TemporaryDirectory(prefix="kws-kd-savedmodel-") as tmp:
        jobs = []
        for safe in (False, True):  # the dynamic-range file needs its own front-end form
            modes = [m for m in outputs if (m == "dynamic") == safe]
            if not modes:
                continue
            saved = Path(tmp) / f"saved_model{'_dynamic' if safe else ''}"
            with dynamic_range_safe(model, safe):
                export_saved_model(model, saved, label)
            jobs += [Job(saved, m, Path(outputs[m]), label) for m in modes]
        run_jobs(jobs, representative=representative, int8_io=int8_io, float_scopes=float_scopes, timeout_s=timeout_s)
        return {job.mode: job.out for job in jobs}
