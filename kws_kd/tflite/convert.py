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
- int8: full integer quantization calibrated on a representative set. Ops
  without an int8 kernel (RFFT2D / COMPLEX_ABS of the MFCC front end) stay
  float. I/O is float32 by default (raw audio in, logits out); `int8_io=True`
  makes the input int8 audio, i.e. 8-bit audio (measured in docs/export.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from kws_kd.atomic import atomic_path
from kws_kd.errors import KwsKdError
from kws_kd.tflite import MODES


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


def convert_saved_model(
    saved_model: str | os.PathLike,
    outputs: dict[str, str | os.PathLike],
    *,
    representative: np.ndarray | None = None,
    int8_io: bool = False,
    label: str = "model",
    timeout_s: float = 3600,
) -> dict[str, Path]:
    """Convert `saved_model` to every `{mode: out_path}` in one child process.

    Each output is renamed into place only if its conversion succeeded; the
    first failure raises `KwsKdError` naming `label` and the mode.
    """
    for mode in outputs:
        if mode not in MODES:
            raise KwsKdError(f"unknown quantization mode {mode!r} (choose from {', '.join(MODES)})")
    if "int8" in outputs and (representative is None or len(representative) == 0):
        raise KwsKdError(f"{label}: int8 quantization needs a non-empty representative set")
    modes = list(outputs)
    with tempfile.TemporaryDirectory(prefix="kws-kd-convert-") as tmp, contextlib.ExitStack() as stack:
        tmp_outs = {m: stack.enter_context(atomic_path(outputs[m])) for m in modes}
        cmd = [sys.executable, "-m", "kws_kd.tflite._child", str(saved_model)]
        cmd += [f"{m}={tmp_outs[m]}" for m in modes]
        if representative is not None and "int8" in outputs:
            rep_path = Path(tmp) / "representative.npy"
            np.save(rep_path, np.asarray(representative, dtype=np.float32))
            cmd += ["--representative", str(rep_path)]
        if int8_io:
            cmd.append("--int8-io")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise KwsKdError(f"{label}: TFLite conversion ({', '.join(modes)}) timed out after {timeout_s:.0f} s") from None
        done = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("done ")]
        failed = next((m for m in modes if m not in done), None)
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            raise KwsKdError(f"{label}: the TFLite converter crashed ({name}) converting to {failed}; no file written")
        if proc.returncode != 0 or failed is not None:
            raise KwsKdError(f"{label}: TFLite conversion to {failed} failed: {_last_error_line(proc.stderr)}")
        for m in modes:
            if tmp_outs[m].stat().st_size == 0:
                raise KwsKdError(f"{label}: TFLite conversion to {m} produced an empty file")
    return {m: Path(outputs[m]) for m in modes}


def convert_model(
    model,
    outputs: dict[str, str | os.PathLike],
    *,
    representative: np.ndarray | None = None,
    int8_io: bool = False,
    label: str | None = None,
    timeout_s: float = 3600,
) -> dict[str, Path]:
    """Convert an in-memory Keras model (audio [1, samples] -> logits) to each `{mode: path}`."""
    label = label or model.name
    with tempfile.TemporaryDirectory(prefix="kws-kd-savedmodel-") as tmp:
        saved = Path(tmp) / "saved_model"
        export_saved_model(model, saved, label)
        return convert_saved_model(
            saved, outputs, representative=representative, int8_io=int8_io, label=label, timeout_s=timeout_s
        )
