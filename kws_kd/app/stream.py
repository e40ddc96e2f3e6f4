"""The app's audio path: ring buffer, hop schedule, streaming-file state and `KeywordStream` (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from kws_kd.app.decoding import (
    DEFAULT_SMOOTHING_WINDOWS,
    DEFAULT_SUPPRESSION_S,
    DEFAULT_THRESHOLD,
    Announcer,
    Decision,
    PosteriorSmoother,
    decode,
)
from kws_kd.app.sidecar import Sidecar, StreamingSpec
from kws_kd.app.tensors import carried_input, carried_value, posteriors, prepare_input
from kws_kd.errors import KwsKdError

__all__ = [
    "DEFAULT_HOP_MS", "FrameModel", "HopResult", "HopScheduler", "KeywordStream", "Model", "RingBuffer",
    "StreamingState", "hop_samples", "signature_runner_model",
]

DEFAULT_HOP_MS = 250


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
