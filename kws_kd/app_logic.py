"""Numpy reference of the Android sample app's logic (android_harness/).

The app keeps the last `input_samples` of microphone PCM in a ring buffer, runs
the model every hop, converts int16 PCM to the model's input dtype, turns the
output into posteriors, smooths them over a few hops and decodes the top label.
This module does exactly the same arithmetic in the same order as the plain-Java
classes in `android_harness/app/src/main/java/org/kwskd/app/core/`, so the
golden file written by `android_harness/make_golden.py` pins both sides:
integers must match exactly and floats to ~1e-6.

Arithmetic rules shared with the Java side (see docs/android.md):
- float input: ``pcm / 32768`` in float32 (exact: a power-of-two divisor).
- int8 input: ``clamp(round_half_away(pcm / 32768 / scale) + zero_point, -128, 127)``
  computed in float64; half away from zero is what TFLite's own quantize uses.
- int8 output: ``(q - zero_point) * scale`` in float64.
- posteriors in float64: softmax (single-label) or sigmoid (multi-label) of
  logits; ``"kind": "probabilities"`` outputs are used as they are.
- smoothing: plain mean of the last N posterior vectors, summed oldest first.
- decoding: first index of the maximum; "detected" when its smoothed posterior
  reaches the threshold and the label is not a filler (``_silence_`` etc.).
- announcing (`detection_events` over a whole stream, `Announcer` hop by hop;
  Java: `Announcer`): once per onset of a detected label, at most one
  announcement per suppression time.
- hop scheduling: the first inference runs as soon as the ring holds a full
  window, then one every ``hop`` samples: after ``input_samples + k * hop``
  samples have been written.
- streaming files (sidecar ``"streaming": {...}``, `StreamingSpec`): one call
  per ``hop_samples`` of audio, from the first hop on. The tail and state
  tensors are carried from each call's outputs to the next call's inputs
  (`StreamingState`), exactly as `kws_kd.tflite.streaming.StreamingTFLite`
  does: zeros at the start, carried values kept as float32 (an int8 output is
  dequantized ``(float32(q) - zero_point) * float32(scale)`` in float32), an
  int8 input requantized from them in float64 like the audio, and the
  ``recurrent`` states reset to zero after each of the first
  ``warmup_frames`` calls.

Numpy only: it never imports TensorFlow, so the golden test stays fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from kws_kd.errors import KwsKdError

SIDECAR_FORMAT = "kws-kd-tflite"
SIDECAR_VERSION = 1
PCM_SCALE = 32768.0
DEFAULT_HOP_MS = 250
DEFAULT_SMOOTHING_WINDOWS = 3
DEFAULT_THRESHOLD = 0.5
DEFAULT_SUPPRESSION_S = 0.5


# ---------------------------------------------------------------------------
# sidecar


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
        raise _fail(source, f"'format' is {fmt!r}, expected '{SIDECAR_FORMAT}'")
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
    """Validate the `streaming` block (StreamingLayout.to_dict() + the `tensors` kws-kd export adds)."""
    from kws_kd.tflite.streaming import StreamingLayout  # numpy only at import time

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
    layout = StreamingLayout.from_dict(block)  # cannot fail after the checks above
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

    tail_n = layout.tail_samples
    audio = sized(find(t_in, "inputs", "audio"), "inputs.audio", hop)
    tail = sized(find(t_in, "inputs", "tail"), "inputs.tail", tail_n)
    logits = find(t_out, "outputs", "logits")
    tail_out = sized(find(t_out, "outputs", "tail_out"), "outputs.tail_out", tail_n)
    state_specs = []
    for name, shape in layout.states.items():
        n = int(np.prod(shape))
        state_specs.append(StateSpec(name, tuple(shape), sized(find(t_in, "inputs", name), f"inputs.{name}", n),
                                     sized(find(t_out, "outputs", f"{name}_out"), f"outputs.{name}_out", n),
                                     name in layout.recurrent))
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
    except OSError as exc:
        raise _fail(str(path), f"cannot read sidecar ({exc.strerror or exc})") from None
    return parse_sidecar(text, str(path))


def sidecar_path_for(model_path: str | Path) -> Path:
    """The sidecar sits beside the model with the same stem: FILE.tflite -> FILE.json."""
    return Path(model_path).with_suffix(".json")


# ---------------------------------------------------------------------------
# ring buffer and hop scheduling


class RingBuffer:
    """The last `capacity` int16 samples; starts as silence (zeros)."""

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.int16)
        self._pos = 0  # next write index
        self.total_written = 0

    def write(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.int16).reshape(-1)
        n = len(samples)
        self.total_written += n
        if n >= self.capacity:  # only the newest `capacity` samples survive
            samples = samples[n - self.capacity :]
            self._data[:] = samples
            self._pos = 0
            return
        first = min(n, self.capacity - self._pos)
        self._data[self._pos : self._pos + first] = samples[:first]
        self._data[: n - first] = samples[first:]
        self._pos = (self._pos + n) % self.capacity

    def snapshot(self) -> np.ndarray:
        """Oldest sample first."""
        return np.concatenate([self._data[self._pos:], self._data[: self._pos]])


def hop_samples(hop_ms: int, sample_rate: int) -> int:
    """Hop length in samples, rounded half up; at least one sample."""
    if hop_ms <= 0:
        raise KwsKdError(f"hop must be a positive number of milliseconds, got {hop_ms}")
    return max(1, (hop_ms * sample_rate + 500) // 1000)


class HopScheduler:
    """Says how many samples may be written before the next inference is due."""

    def __init__(self, window: int, hop: int):
        if window <= 0 or hop <= 0:
            raise ValueError("window and hop must be positive")
        self.window = window
        self.hop = hop
        self.next_due = window

    def samples_until_due(self, total_written: int) -> int:
        return self.next_due - total_written

    def is_due(self, total_written: int) -> bool:
        return total_written == self.next_due

    def advance(self) -> None:
        self.next_due += self.hop


# ---------------------------------------------------------------------------
# tensor conversion


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C's round(), TFLite's quantize)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    return (np.asarray(pcm, dtype=np.int16).astype(np.float32) / np.float32(PCM_SCALE)).astype(np.float32)


def quantize_pcm(pcm: np.ndarray, quant: Quantization) -> np.ndarray:
    x = np.asarray(pcm, dtype=np.int16).astype(np.float64) / PCM_SCALE / quant.scale
    q = round_half_away(x) + quant.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def prepare_input(pcm_window: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The model input tensor (flat) for one window of int16 PCM."""
    if spec.dtype == "int8":
        return quantize_pcm(pcm_window, spec.quantization)
    return pcm_to_float(pcm_window)


def dequantize_output(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    raw = np.asarray(raw).reshape(-1)
    if spec.dtype == "int8":
        q = spec.quantization
        return (raw.astype(np.float64) - q.zero_point) * q.scale
    return raw.astype(np.float32).astype(np.float64)


def quantize_real(x: np.ndarray, quant: Quantization) -> np.ndarray:
    """Real values -> int8: ``clamp(round_half_away(x / scale) + zero_point)`` in float64 (runner.quantize_input)."""
    q = round_half_away(np.asarray(x, dtype=np.float64) / quant.scale) + quant.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def carried_value(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A streaming output as the float32 value carried to the next call (StreamingTFLite._from).

    int8: ``(float32(q) - zero_point) * float32(scale)``, computed in float32.
    """
    raw = np.asarray(raw).reshape(-1)
    if spec.dtype == "int8":
        q = spec.quantization
        return (raw.astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale)
    return raw.astype(np.float32)


def carried_input(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A carried float32 value as the next call's input tensor (StreamingTFLite._to)."""
    if spec.dtype == "int8":
        return quantize_real(value, spec.quantization)
    return np.asarray(value, dtype=np.float32).copy()


def softmax(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    e = np.exp(v - np.max(v))
    total = 0.0
    for x in e:  # same summation order as the Java loop
        total += x
    return e / total


def sigmoid(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-v))


def posteriors(raw: np.ndarray, sidecar: Sidecar) -> np.ndarray:
    values = dequantize_output(raw, sidecar.output)
    if sidecar.output.kind == "probabilities":
        return values
    return sigmoid(values) if sidecar.multi_label else softmax(values)


# ---------------------------------------------------------------------------
# smoothing and decoding


class PosteriorSmoother:
    """Mean of the last `windows` posterior vectors (fewer until it has seen that many)."""

    def __init__(self, windows: int):
        if windows <= 0:
            raise KwsKdError(f"smoothing window count must be positive, got {windows}")
        self.windows = windows
        self._history: list[np.ndarray] = []

    def push(self, p: np.ndarray) -> np.ndarray:
        self._history.append(np.asarray(p, dtype=np.float64).copy())
        if len(self._history) > self.windows:
            self._history.pop(0)
        total = np.zeros_like(self._history[0])
        for h in self._history:  # oldest first, as in Java
            total = total + h
        return total / len(self._history)


@dataclass(frozen=True)
class Decision:
    index: int
    label: str
    confidence: float
    detected: bool


def is_filler(label: str) -> bool:
    """Labels such as `_silence_` and `_unknown_` are never announced as keywords."""
    return label.startswith("_")


def decode_batch(smoothed: np.ndarray, labels: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decode` for many hops at once: (index [N], confidence [N], detected [N]) of smoothed [N, C].

    This is the one decoding rule: `decode` is this on a single row, so the
    app's per-hop decision and a threshold sweep over a long stream
    (`kws_kd.stream_eval`) cannot drift apart.
    """
    smoothed = np.asarray(smoothed, dtype=np.float64)
    if smoothed.ndim != 2 or smoothed.shape[1] != len(labels):
        raise ValueError(f"smoothed posteriors of shape {smoothed.shape} do not match {len(labels)} labels")
    index = np.argmax(smoothed, axis=1)  # first maximum, like the Java loop
    conf = smoothed[np.arange(len(smoothed)), index]
    filler = np.array([is_filler(label) for label in labels], dtype=bool)
    return index, conf, (conf >= threshold) & ~filler[index]


def decode(smoothed: np.ndarray, labels: Sequence[str], threshold: float) -> Decision:
    index, conf, detected = decode_batch(np.asarray(smoothed, dtype=np.float64).reshape(1, -1), labels, threshold)
    i = int(index[0])
    return Decision(i, labels[i], float(conf[0]), bool(detected[0]))


def detection_events(
    times_s: np.ndarray, index: np.ndarray, detected: np.ndarray, suppression_s: float = DEFAULT_SUPPRESSION_S
) -> np.ndarray:
    """Indices of the hops at which a keyword is announced: once per onset, never faster than `suppression_s`.

    Why: a keyword keeps its smoothed posterior above the threshold for many
    hops (for a whole window with whole-clip models), but the user must hear it
    once. A hop fires when it is `detected` and the hop before was not detected
    with the same label (an onset), and at least `suppression_s` have passed
    since the last announcement of any label (TensorFlow's RecognizeCommands
    suppression, 500 ms). An onset inside the suppression time is dropped for
    good: it does not fire later while the label stays detected. Causal, so an
    app can apply it hop by hop; `times_s` are the hops' end times.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    index = np.asarray(index).reshape(-1)
    detected = np.asarray(detected, dtype=bool).reshape(-1)
    if not len(times) == len(index) == len(detected):
        raise ValueError("times, index and detected must have one entry per hop")
    held = np.zeros_like(detected)
    held[1:] = detected[:-1] & (index[1:] == index[:-1])
    fired: list[int] = []
    last = -math.inf
    for i in np.flatnonzero(detected & ~held):
        if times[i] - last >= suppression_s - 1e-9:  # tolerance: hop times are sample counts / rate
            fired.append(int(i))
            last = times[i]
    return np.array(fired, dtype=np.int64)


class Announcer:
    """`detection_events`, one hop at a time (Java: Announcer): `push` says whether this hop announces.

    Same rule, same float arithmetic: a hop fires when it is detected, the hop
    before was not detected with the same label, and at least `suppression_s`
    (minus 1e-9) passed since the last announcement. `tests/test_app_logic_streaming.py`
    checks it against `detection_events` on random sequences.
    """

    def __init__(self, suppression_s: float = DEFAULT_SUPPRESSION_S):
        if not (suppression_s >= 0 and math.isfinite(suppression_s)):
            raise KwsKdError(f"suppression time must be a non-negative number of seconds, got {suppression_s}")
        self.suppression_s = float(suppression_s)
        self._last = -math.inf
        self._prev_index = -1
        self._prev_detected = False

    def push(self, time_s: float, index: int, detected: bool) -> bool:
        held = self._prev_detected and self._prev_index == index
        self._prev_index, self._prev_detected = int(index), bool(detected)
        if detected and not held and time_s - self._last >= self.suppression_s - 1e-9:
            self._last = time_s
            return True
        return False


# ---------------------------------------------------------------------------
# streaming files: the carried tail and state tensors


FrameModel = Callable[[list], Sequence[np.ndarray]]


class StreamingState:
    """What a streaming file carries between calls (Java: StreamingState); mirrors StreamingTFLite.

    `reset()`: tail and states are float32 zeros, no calls made. `inputs(hop_pcm)`
    builds [audio, tail, *states] in the file's input dtypes; `absorb(outputs)`
    takes [logits, tail_out, *states_out], keeps tail_out and the states as
    float32 (`carried_value`) and, after each of the first `warmup_frames`
    calls, sets the recurrent states back to zero.
    """

    def __init__(self, spec: StreamingSpec):
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        self.tail = np.zeros(self.spec.tail_samples, np.float32)
        self.states = [np.zeros(s.input.size, np.float32) for s in self.spec.states]
        self.calls = 0

    def inputs(self, hop_pcm: np.ndarray) -> list[np.ndarray]:
        hop_pcm = np.asarray(hop_pcm, dtype=np.int16).reshape(-1)
        if len(hop_pcm) != self.spec.hop_samples:
            raise ValueError(f"a streaming call takes {self.spec.hop_samples} samples, got {len(hop_pcm)}")
        return [prepare_input(hop_pcm, self.spec.audio), carried_input(self.tail, self.spec.tail),
                *(carried_input(v, s.input) for v, s in zip(self.states, self.spec.states))]

    def absorb(self, outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Carry one call's outputs; returns them flat, in the layout's order."""
        specs = self.spec.outputs
        outs = tuple(np.asarray(o).reshape(-1) for o in outputs)
        if len(outs) != len(specs):
            raise ValueError(f"a streaming call returned {len(outs)} tensors, the sidecar expects {len(specs)}")
        for o, spec in zip(outs, specs):
            if o.size != spec.size:
                raise ValueError(f"streaming output {spec.name!r} has {o.size} values, the sidecar expects {spec.size}")
        self.tail = carried_value(outs[1], self.spec.tail_out)
        self.states = [carried_value(o, s.output) for o, s in zip(outs[2:], self.spec.states)]
        self.calls += 1
        if self.calls <= self.spec.warmup_frames:  # convolution buffers still filling
            for i, s in enumerate(self.spec.states):
                if s.recurrent:
                    self.states[i] = np.zeros_like(self.states[i])
        return outs


def signature_runner_model(runner, sidecar: Sidecar) -> FrameModel:
    """A KeywordStream model for a streaming file from a LiteRT signature runner (no import here).

    `runner` is `Interpreter(...).get_signature_runner()`: called with the
    sidecar's input names, it returns a dict keyed by the output names.
    """
    spec = sidecar.streaming
    if spec is None:
        raise KwsKdError("signature_runner_model needs a streaming sidecar")
    details = runner.get_input_details()

    def run(inputs: list) -> list[np.ndarray]:
        feeds = {t.name: np.asarray(x).reshape(details[t.name]["shape"]).astype(details[t.name]["dtype"])
                 for t, x in zip(spec.inputs, inputs)}
        outs = runner(**feeds)
        return [np.asarray(outs[t.name]).reshape(-1).copy() for t in spec.outputs]

    return run


# ---------------------------------------------------------------------------
# the whole stream


@dataclass(frozen=True)
class HopResult:
    hop_index: int
    end_sample: int  # total samples written when this inference ran
    model_input: np.ndarray
    raw_output: np.ndarray
    posteriors: np.ndarray
    smoothed: np.ndarray
    decision: Decision
    announced: bool = False  # the Announcer fired on this hop
    frame_inputs: tuple = ()  # streaming files: every tensor handed to the model (audio, tail, states)
    frame_outputs: tuple = ()  # streaming files: every tensor it returned (logits, tail_out, states_out)


Model = Callable[[np.ndarray], np.ndarray]


class KeywordStream:
    """Feed PCM chunks of any size; get one HopResult per hop (Java: KeywordStream).

    Whole-clip files: `model(x)` gets the window tensor, one call per `hop_ms`.
    Streaming files (`sidecar.streaming`): one call per `hop_samples` of the
    file (`hop_ms` is ignored), from the first hop on; `model(inputs)` gets
    [audio, tail, *states] and returns [logits, tail_out, *states_out]
    (`signature_runner_model` adapts LiteRT), carried by `StreamingState`.
    """

    def __init__(
        self,
        sidecar: Sidecar,
        model: Model | FrameModel,
        hop_ms: int = DEFAULT_HOP_MS,
        smoothing_windows: int = DEFAULT_SMOOTHING_WINDOWS,
        threshold: float = DEFAULT_THRESHOLD,
        suppression_s: float = DEFAULT_SUPPRESSION_S,
    ):
        self.sidecar = sidecar
        self.model = model
        self.threshold = threshold
        if sidecar.streaming is None:
            window, hop = sidecar.input_samples, hop_samples(hop_ms, sidecar.sample_rate)
            self.state = None
        else:  # the ring holds exactly the newest hop; the model carries the rest
            window = hop = sidecar.streaming.hop_samples
            self.state = StreamingState(sidecar.streaming)
        self.ring = RingBuffer(window)
        self.scheduler = HopScheduler(window, hop)
        self.smoother = PosteriorSmoother(smoothing_windows)
        self.announcer = Announcer(suppression_s)
        self.hops = 0

    def feed(self, chunk: Iterable[int]) -> list[HopResult]:
        chunk = np.asarray(chunk, dtype=np.int16).reshape(-1)
        results = []
        offset = 0
        while offset < len(chunk):
            take = min(len(chunk) - offset, self.scheduler.samples_until_due(self.ring.total_written))
            self.ring.write(chunk[offset : offset + take])
            offset += take
            if self.scheduler.is_due(self.ring.total_written):
                results.append(self._infer())
                self.scheduler.advance()
        return results

    def _infer(self) -> HopResult:
        frame_in: tuple = ()
        frame_out: tuple = ()
        if self.state is None:
            x = prepare_input(self.ring.snapshot(), self.sidecar.input)
            raw = np.asarray(self.model(x)).reshape(-1)
        else:
            frame_in = tuple(self.state.inputs(self.ring.snapshot()))
            frame_out = self.state.absorb(self.model(list(frame_in)))
            x, raw = frame_in[0], frame_out[0]
        p = posteriors(raw, self.sidecar)
        s = self.smoother.push(p)
        d = decode(s, self.sidecar.labels, self.threshold)
        end = self.ring.total_written
        announced = self.announcer.push(end / self.sidecar.sample_rate, d.index, d.detected)
        result = HopResult(self.hops, end, x, raw, p, s, d, announced, frame_in, frame_out)
        self.hops += 1
        return result
