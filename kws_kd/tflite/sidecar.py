"""The sidecar `FILE.json` beside `FILE.tflite`: everything an app needs to use the file.

Format (docs/architecture.md, "TFLite sidecar"): labels, sample rate, input
length, I/O dtypes and quantization, front-end recipe, source run and its test
metrics, op list and size. Written here; read in one place,
`kws_kd.app.sidecar` (numpy only, shared with the app mirror), which
`read_sidecar` below calls.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kws_kd.app.sidecar import SIDECAR_FORMAT, SIDECAR_VERSION, load_sidecar
from kws_kd.app.sidecar import sidecar_path_for as sidecar_path
from kws_kd.atomic import atomic_write_text
from kws_kd.tflite.runner import io_details, op_counts, signature_details


def build_sidecar(
    tflite_path: str | os.PathLike,
    *,
    model: str,
    quantize: str,
    labels: list[str],
    multi_label: bool,
    sample_rate: int,
    front_end: dict,
    source_run: str | None,
    test_metrics: dict | None,
    streaming: dict | None = None,
    clip_samples: int | None = None,
) -> dict:
    """The sidecar dict for an existing .tflite file (I/O, ops and size read from the file).

    For a streaming file pass `streaming` (`StreamingLayout.to_dict()`) and the
    clip length it was verified on: `input` is then the per-call audio hop and
    `streaming.tensors` describes every named input and output.
    """
    if streaming:
        tensors = signature_details(tflite_path, list(streaming["states"]))
        io = {"input": tensors["inputs"]["audio"], "output": tensors["outputs"]["logits"]}
        input_samples = int(clip_samples or 0)
        streaming = {**streaming, "tensors": tensors}
    else:
        io = io_details(tflite_path)
        input_samples = int(io["input"]["shape"][-1])
    return {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "model": model,
        "quantize": quantize,
        "streaming": streaming or False,
        "labels": list(labels),
        "multi_label": bool(multi_label),
        "sample_rate": int(sample_rate),
        "clip_seconds": input_samples / sample_rate,
        "input_samples": input_samples,
        "input": io["input"],
        "output": {**io["output"], "kind": "logits"},
        "front_end": dict(front_end),
        "source_run": source_run,
        "test_metrics": test_metrics,
        "ops": op_counts(tflite_path),
        "size_bytes": Path(tflite_path).stat().st_size,
    }


def write_sidecar(path: str | os.PathLike, sidecar: dict) -> None:
    atomic_write_text(path, json.dumps(sidecar, indent=2) + "\n")


def read_sidecar(tflite_path: str | os.PathLike) -> dict:
    """The validated sidecar of `tflite_path` as a dict (one-line error when missing, malformed or not ours)."""
    return load_sidecar(sidecar_path(tflite_path)).extra
