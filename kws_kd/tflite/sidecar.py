"""The sidecar `FILE.json` beside `FILE.tflite`: everything an app needs to use the file.

Format (docs/architecture.md, "TFLite sidecar"): labels, sample rate, input
length, I/O dtypes and quantization, front-end recipe, source run and its test
metrics, op list and size. Written once here; apps and `evaluate_tflite` read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kws_kd.atomic import atomic_write_text
from kws_kd.errors import KwsKdError
from kws_kd.jsonio import read_json_object
from kws_kd.tflite.runner import io_details, op_counts

SIDECAR_FORMAT = "kws-kd-tflite"
SIDECAR_VERSION = 1


def sidecar_path(tflite_path: str | os.PathLike) -> Path:
    return Path(tflite_path).with_suffix(".json")


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
        from kws_kd.tflite.streaming import StreamingLayout, describe_signature

        tensors = describe_signature(tflite_path, StreamingLayout.from_dict(streaming))
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
    """Read the sidecar of `tflite_path` (clear error when missing or not ours)."""
    path = sidecar_path(tflite_path)
    data = read_json_object(path, "every kws-kd .tflite needs its sidecar JSON (re-run kws-kd export)")
    if data.get("format") != SIDECAR_FORMAT:
        raise KwsKdError(f"{path}: not a kws-kd TFLite sidecar (format is not {SIDECAR_FORMAT!r})")
    if data.get("version", 0) > SIDECAR_VERSION:
        raise KwsKdError(f"{path}: sidecar version {data.get('version')} is newer than this kws-kd reads")
    return data
