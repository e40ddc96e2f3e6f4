"""The sidecar reader: `FILE.json` beside `FILE.tflite`, parsed and validated (numpy only).

This is the one reader of the format (docs/architecture.md, "TFLite sidecar");
the writer is `kws_kd.tflite.sidecar`, whose `read_sidecar` calls this, and the
Java app has its own port (`android_harness/.../core/Sidecar.java`). Every
problem is a one-line `KwsKdError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError

__all__ = [
    "SIDECAR_FORMAT", "SIDECAR_VERSION", "Quantization", "Sidecar", "StateSpec", "StreamingSpec", "TensorSpec",
    "load_sidecar", "parse_sidecar", "sidecar_path_for",
]

SIDECAR_FORMAT = "kws-kd-tflite"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Quantization:
    """Affine int8 parameters of one tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" or "int8"
    quantization: Quantization | None
    kind: str = "logits"  # outputs only: "logits" or "probabilities"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class Sidecar:
    """The fields of `FILE.json` (docs/architecture.md) that the app uses."""

    model: str
    quantize: str
    labels: tuple[str, ...]
    multi_label: bool
    sample_rate: int
    input_samples: int
    input: TensorSpec
    output: TensorSpec
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    streaming: "StreamingSpec | None" = None  # None: a whole-clip file

    @property
    def is_streaming(self) -> bool:
        return self.streaming is not None


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of a streaming file: fed as `input`, returned as `output` (NAME + "_out")."""

    name: str
    shape: tuple[int, ...]  # without the batch dimension
    input: TensorSpec
    output: TensorSpec
    recurrent: bool  # held at zero during the warm-up calls


@dataclass(frozen=True)
class StreamingSpec:
    """The sidecar's `streaming` block: how to drive a one-hop-per-call file (docs/export.md).

    Inputs, in this order: audio [hop], tail [window - hop], then the states;
    outputs: logits, tail_out, then each state's next value.
    """

    hop_samples: int
    window_samples: int
    audio: TensorSpec
    tail: TensorSpec
    logits: TensorSpec  # the sidecar's `output` (with its kind)
    tail_out: TensorSpec
    states: tuple[StateSpec, ...]
    warmup_frames: int

    @property
    def tail_samples(self) -> int:
        return self.window_samples - self.hop_samples

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (self.audio, self.tail, *(s.input for s in self.states))

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (self.logits, self.tail_out, *(s.output for s in self.states))


def _fail(source: str, problem: str) -> KwsKdError:
    return KwsKdError(f"{source}: {problem}")


def _require(obj: dict, key: str, kind, source: str, where: str = ""):
    if key not in obj:
        raise _fail(source, f"missing field '{where}{key}'")
    value = obj[key]
    ok = isinstance(value, kind) and not (kind in (int, float, (int, float)) and isinstance(value, bool))
    if not ok:
        raise _fail(source, f"field '{where}{key}' has the wrong type ({type(value).__name__})")
    return value


def _tensor(obj, source: str, where: str, is_output: bool) -> TensorSpec:
    if not isinstance(obj, dict):
        raise _fail(source, f"field '{where}' must be an object")
    prefix = where + "."
    name = obj.get("name", "")
    shape = _require(obj, "shape", list, source, prefix)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise _fail(source, f"field '{prefix}shape' must be a list of positive integers")
    dtype = _require(obj, "dtype", str, source, prefix)
    if dtype not in ("float32", "int8"):
        raise _fail(source, f"field '{prefix}dtype' is '{dtype}'; the app handles float32 and int8")
    quant = None
    q = obj.get("quantization")
    if dtype == "int8":
        if not isinstance(q, dict):
            raise _fail(source, f"int8 tensor '{where}' needs 'quantization' with scale and zero_point")
        scale = _require(q, "scale", (int, float), source, prefix + "quantization.")
        zp = _require(q, "zero_point", int, source, prefix + "quantization.")
        if not (scale > 0 and math.isfinite(scale)):
            raise _fail(source, f"field '{prefix}quantization.scale' must be a positive number")
        if not -128 <= zp <= 127:
            raise _fail(source, f"field '{prefix}quantization.zero_point' must be in [-128, 127]")
        quant = Quantization(float(scale), int(zp))
    kind = "logits"
    if is_output:
        kind = obj.get("kind", "logits")
        if kind not in ("logits", "probabilities"):
            raise _fail(source, f"field '{prefix}kind' is '{kind}'; expected 'logits' or 'probabilities'")
    return TensorSpec(str(name), tuple(shape), dtype, quant, kind)


def parse_sidecar(text: str, source: str = "sidecar") -> Sidecar:
    """Parse and validate sidecar JSON text; `source` names the file in errors."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(source, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(obj, dict):
        raise _fail(source, "must be a JSON object")
    fmt = obj.get("format")
    if fmt != SIDECAR_FORMAT:
        raise _fail(source, f"not a kws-kd TFLite sidecar ('format' is {fmt!r}, expected '{SIDECAR_FORMAT}')")
    version = _require(obj, "version", int, source)
    if version != SIDECAR_VERSION:
        raise _fail(source, f"sidecar version {version} is not supported (this app reads version {SIDECAR_VERSION})")
    block = obj.get("streaming", False)
    if block is True:
        raise _fail(source, "'streaming' is true but the streaming layout is missing (re-export with kws-kd export --streaming)")
    if block not in (False, None) and not isinstance(block, dict):
        raise _fail(source, "field 'streaming' must be false or the streaming layout object")
    labels = _require(obj, "labels", list, source)
    if not labels or not all(isinstance(x, str) for x in labels):
        raise _fail(source, "field 'labels' must be a non-empty list of strings")
    multi = obj.get("multi_label", False)
    if not isinstance(multi, bool):
        raise _fail(source, "field 'multi_label' must be true or false")
    rate = _require(obj, "sample_rate", int, source)
    samples = _require(obj, "input_samples", int, source)
    streaming = isinstance(block, dict)
    # a streaming file's input_samples is the clip length it was verified on (0 when unknown): informational
    if rate <= 0 or samples < 0 or (samples == 0 and not streaming):
        raise _fail(source, "'sample_rate' and 'input_samples' must be positive")
    inp = _tensor(obj.get("input"), source, "input", False)
    out = _tensor(obj.get("output"), source, "output", True)
    spec = _streaming_spec(block, source, inp, out) if streaming else None
    if spec is None and inp.size != samples:
        raise _fail(source, f"input shape {list(inp.shape)} does not hold input_samples={samples} (raw-audio models only)")
    if out.size != len(labels):
        raise _fail(source, f"output shape {list(out.shape)} does not match {len(labels)} labels")
    return Sidecar(
        model=str(obj.get("model", "")),
        quantize=str(obj.get("quantize", "")),
        labels=tuple(labels),
        multi_label=multi,
        sample_rate=rate,
        input_samples=samples,
        input=inp,
        output=out,
        extra=obj,
        streaming=spec,
    )


def _same_tensor(a: TensorSpec, b: TensorSpec) -> bool:
    return a.dtype == b.dtype and a.size == b.size and a.quantization == b.quantization


def _streaming_spec(block: dict, source: str, inp: TensorSpec, out: TensorSpec) -> StreamingSpec:
    """Validate the `streaming` block (`kws_kd.tflite.streaming.StreamingLayout.to_dict()` + the `tensors` export adds)."""
    w = "streaming."
    hop = _require(block, "hop_samples", int, source, w)
    window = _require(block, "window_samples", int, source, w)
    if hop <= 0 or window <= hop:
        raise _fail(source, "'streaming.hop_samples' must be positive and 'streaming.window_samples' larger")
    if "tail_samples" in block and _require(block, "tail_samples", int, source, w) != window - hop:
        raise _fail(source, "'streaming.tail_samples' is not window_samples - hop_samples")
    states = _require(block, "states", dict, source, w)
    for name, shape in states.items():
        if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise _fail(source, f"field 'streaming.states.{name}' must be a list of positive integers")
    warmup = _require(block, "warmup_frames", int, source, w) if "warmup_frames" in block else 0
    recurrent = _require(block, "recurrent", list, source, w) if "recurrent" in block else []
    if warmup < 0:
        raise _fail(source, "'streaming.warmup_frames' must not be negative")
    for name in recurrent:
        if not isinstance(name, str) or name not in states:
            raise _fail(source, f"'streaming.recurrent' names {name!r}, which is not a state")
    tensors = _require(block, "tensors", dict, source, w)
    t_in = _require(tensors, "inputs", dict, source, w + "tensors.")
    t_out = _require(tensors, "outputs", dict, source, w + "tensors.")

    def find(group: dict, kind: str, key: str) -> TensorSpec:
        where = f"{w}tensors.{kind}.{key}"
        if key not in group:
            raise _fail(source, f"missing field '{where}'")
        spec = _tensor(group[key], source, where, False)
        if kind == "inputs" and not spec.name:
            spec = TensorSpec(key, spec.shape, spec.dtype, spec.quantization)  # signature inputs are named by key
        if not spec.name:
            raise _fail(source, f"field '{where}.name' must name the file's signature output")
        return spec

    def sized(spec: TensorSpec, where: str, size: int) -> TensorSpec:
        if spec.size != size:
            raise _fail(source, f"'{w}tensors.{where}' has shape {list(spec.shape)}, expected {size} values")
        return spec

    tail_n = window - hop
    audio = sized(find(t_in, "inputs", "audio"), "inputs.audio", hop)
    tail = sized(find(t_in, "inputs", "tail"), "inputs.tail", tail_n)
    logits = find(t_out, "outputs", "logits")
    tail_out = sized(find(t_out, "outputs", "tail_out"), "outputs.tail_out", tail_n)
    state_specs = []
    for name, shape in states.items():
        n = int(np.prod(shape))
        state_specs.append(StateSpec(name, tuple(shape), sized(find(t_in, "inputs", name), f"inputs.{name}", n),
                                     sized(find(t_out, "outputs", f"{name}_out"), f"outputs.{name}_out", n),
                                     name in recurrent))
    if inp.size != hop:
        raise _fail(source, f"input shape {list(inp.shape)} does not hold one hop of {hop} samples (streaming file)")
    if not _same_tensor(inp, audio) or not _same_tensor(out, logits):
        raise _fail(source, "'input'/'output' differ from 'streaming.tensors' audio/logits")
    logits = TensorSpec(logits.name, logits.shape, logits.dtype, logits.quantization, out.kind)
    return StreamingSpec(hop, window, audio, tail, logits, tail_out, tuple(state_specs), warmup)


def load_sidecar(path: str | Path) -> Sidecar:
    """Read `FILE.json`; every problem becomes a one-line KwsKdError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(str(path), "cannot read sidecar: missing (every kws-kd .tflite needs its sidecar JSON beside it; "
                               "re-run kws-kd export)") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot read sidecar ({exc.strerror or exc})") from None
    return parse_sidecar(text, str(path))


def sidecar_path_for(model_path: str | Path) -> Path:
    """The sidecar sits beside the model with the same stem: FILE.tflite -> FILE.json."""
    return Path(model_path).with_suffix(".json")
