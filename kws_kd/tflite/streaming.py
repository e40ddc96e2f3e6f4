"""Streaming export: one 20 ms hop of audio per call, the recurrent state in and out.

Why: an unrolled recurrence over a whole clip is one op group per frame
(~3,000 ops for LSTM-P at 8 s) and its size grows with the clip; kws_streaming's
answer is external state. A streaming file holds ONE frame of the graph:

    inputs   audio [1, hop]      the newest hop of samples (320 = 20 ms)
             tail  [1, window - hop]   the previous window's last samples
             states  [1, ...]    LSTM-P: state_r, state_c; CRNN: conv*_buffer, state_h (zeros at the start)
    outputs  logits [1, C]       the classifier read from the state after this frame
             tail_out, state_*_out     fed back on the next call

Frame k of the non-streaming model covers samples [k * hop, k * hop + window);
feeding `tail = audio[:window - hop]` first and then consecutive hops walks the
same frames, so after the last frame the logits equal the whole-clip model's
(`tests/test_tflite_streaming.py` checks this against Keras and LiteRT).

Which students stream: those whose `StudentSpec` has a `stream_step` (the
student's own file builds its one-frame graph: LSTM-P carries the LSTM's r and
c; CRNN the last frames each 'valid' time convolution needs, plus the GRU's h,
held at zero for the first `warmup_frames` calls while the convolution buffers
fill). Each other student says why not in `StudentSpec.not_streamable`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.int8 import quantize
from kws_kd.tflite.sidecar import read_sidecar, sidecar_path


@dataclass(frozen=True)
class StreamingLayout:
    """How to drive a streaming file; written into the sidecar."""

    hop_samples: int
    window_samples: int
    states: dict[str, tuple[int, ...]]  # state input name -> shape without the batch; output: NAME + "_out"
    warmup_frames: int = 0  # calls during which `recurrent` states are held at zero
    recurrent: tuple[str, ...] = ()

    @property
    def tail_samples(self) -> int:
        return self.window_samples - self.hop_samples

    def zeros(self) -> dict[str, np.ndarray]:
        return {name: np.zeros((1, *shape), np.float32) for name, shape in self.states.items()}

    def frames(self, clip_samples: int) -> int:
        return 1 + (clip_samples - self.window_samples) // self.hop_samples

    @classmethod
    def from_dict(cls, data: dict) -> "StreamingLayout":
        try:
            return cls(int(data["hop_samples"]), int(data["window_samples"]),
                       {str(k): tuple(int(x) for x in v) for k, v in data["states"].items()},
                       int(data.get("warmup_frames", 0)), tuple(data.get("recurrent", ())))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KwsKdError(f"streaming sidecar entry is malformed ({type(exc).__name__}: {exc})") from None

    def to_dict(self) -> dict:
        return {"hop_samples": self.hop_samples, "window_samples": self.window_samples,
                "tail_samples": self.tail_samples, "states": {k: list(v) for k, v in self.states.items()},
                "warmup_frames": self.warmup_frames, "recurrent": list(self.recurrent),
                "inputs": ["audio", "tail", *self.states], "outputs": ["logits", "tail_out",
                                                                        *(f"{s}_out" for s in self.states)]}


def check_streamable(model_name: str) -> None:
    """A one-line error unless the registered student `model_name` has a streaming step."""
    from kws_kd.students.registry import STUDENTS, get_spec

    spec = get_spec(model_name)
    if not spec.streamable:
        names = ", ".join(name for name, s in STUDENTS.items() if s.streamable)
        raise KwsKdError(f"--streaming: {model_name} cannot stream ({spec.not_streamable}); streamable students: "
                         f"{names}. Export it without --streaming.")


def build_streaming_model(whole_clip_model):
    """The one-frame Keras model sharing the weights of a built streamable student (any clip length).

    Returns (model, layout). Inputs: audio, tail, then the states in layout
    order; outputs: logits, tail_out, then the states' next values. The
    student's own `StudentSpec.stream_step` wires the frame after the MFCCs.
    """
    import keras
    from keras import ops

    from kws_kd.students.base import student_info

    info = student_info(whole_clip_model)
    check_streamable(info.spec.name)
    front = info.config.front_end
    hop, window = front.frame_step, front.frame_length
    audio = keras.Input((hop,), batch_size=1, name="audio")
    tail = keras.Input((window - hop,), batch_size=1, name="tail")
    frame = ops.concatenate([tail, audio], axis=-1)  # [1, window]
    mfcc = info.front_end(frame)  # [1, 1, coeffs]
    step = info.spec.stream_step(info.layers, info.config, mfcc)
    layout = StreamingLayout(hop, window, {k: tuple(int(d) for d in v.shape[1:]) for k, v in step.states.items()},
                             int(step.warmup_frames), tuple(step.recurrent))
    model = keras.Model([audio, tail, *step.states.values()], [step.logits, frame[:, hop:], *step.next_states],
                        name=f"{info.spec.name}_streaming")
    return model, layout


def export_streaming_saved_model(model, layout: StreamingLayout, directory: str | os.PathLike, label: str) -> None:
    """SavedModel with named batch-1 inputs (audio, tail, state_*), in the model's input order."""
    import tensorflow as tf

    specs = [tf.TensorSpec([1, layout.hop_samples], tf.float32, name="audio"),
             tf.TensorSpec([1, layout.tail_samples], tf.float32, name="tail")]
    specs += [tf.TensorSpec([1, *shape], tf.float32, name=name) for name, shape in layout.states.items()]
    try:
        model.export(str(directory), format="tf_saved_model", input_signature=[specs], verbose=False)
    except Exception as exc:  # noqa: BLE001 - one line instead of a tracing traceback
        raise KwsKdError(f"{label}: streaming SavedModel export failed: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from None


def keras_stream_inputs(model, layout: StreamingLayout, audio: np.ndarray, every: int = 1) -> dict[str, np.ndarray]:
    """Run the Keras streaming model over clips; return the inputs it saw at every `every`-th frame.

    These are realistic (tail, state) values for int8 calibration: zeros would
    calibrate the state inputs to a range they never keep.
    """
    import tensorflow as tf

    step = tf.function(lambda *xs: model(list(xs), training=False))  # graph mode: ~10x faster per call
    seen = {name: [] for name in ["audio", "tail", *layout.states]}
    for clip in np.asarray(audio, np.float32):
        state = layout.zeros()
        tail = clip[None, : layout.tail_samples]
        for k in range(layout.frames(len(clip))):
            start = layout.tail_samples + k * layout.hop_samples
            hop = clip[None, start : start + layout.hop_samples]
            if k % every == 0:
                for name, value in (("audio", hop), ("tail", tail), *state.items()):
                    seen[name].append(value[0])
            outs = step(hop, tail, *state.values())
            tail = np.asarray(outs[1])
            state = {name: np.asarray(v) for name, v in zip(layout.states, outs[2:])}
            if k < layout.warmup_frames:
                state.update({name: np.zeros_like(state[name]) for name in layout.recurrent})
    return {name: np.stack(v).astype(np.float32) for name, v in seen.items()}


class StreamingTFLite:
    """Drive a streaming .tflite file: `reset()`, then `push(hop)` per 20 ms, or `clip_logits(audio)`."""

    def __init__(self, path: str | os.PathLike, layout: StreamingLayout, num_threads: int | None = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.layout = Path(path), layout
        if not self.path.is_file():
            raise KwsKdError(f"{self.path}: no such .tflite file")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if len(signatures) != 1:
            raise KwsKdError(f"{self.path}: expected one signature, found {sorted(signatures)}")
        (key,) = signatures
        self.runner = self.interpreter.get_signature_runner(key)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        missing = {"audio", "tail", *layout.states} - set(self.inputs)
        if missing:
            raise KwsKdError(f"{self.path}: not a streaming file (inputs {sorted(self.inputs)}, missing {sorted(missing)})")
        # Keras names the outputs output_0..output_N in model order: logits, tail, states.
        order = sorted(self.outputs, key=lambda k: int(k.rsplit("_", 1)[-1]))
        self.out_names = dict(zip(["logits", "tail", *layout.states], order))
        self.reset()

    def reset(self, tail: np.ndarray | None = None) -> None:
        self.state = self.layout.zeros()
        self.calls = 0
        self.tail = np.zeros((1, self.layout.tail_samples), np.float32) if tail is None else \
            np.asarray(tail, np.float32).reshape(1, -1)

    def _to(self, name: str, x: np.ndarray) -> np.ndarray:
        d = self.inputs[name]
        scale, zero = d.get("quantization", (0.0, 0))
        if np.dtype(d["dtype"]) == np.float32 or not scale:
            return x.astype(np.float32)
        return quantize(x, scale, zero, d["dtype"])

    def _from(self, name: str, y: np.ndarray) -> np.ndarray:
        d = self.outputs[name]
        scale, zero = d.get("quantization", (0.0, 0))
        if np.dtype(d["dtype"]) == np.float32 or not scale:
            return y.astype(np.float32)
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)

    def push(self, hop: np.ndarray) -> np.ndarray:
        """Feed the next `hop_samples` samples; returns the logits after this frame."""
        feeds = {"audio": np.asarray(hop, np.float32).reshape(1, -1), "tail": self.tail, **self.state}
        outs = self.runner(**{k: self._to(k, v) for k, v in feeds.items()})
        get = {role: self._from(name, outs[name]) for role, name in self.out_names.items()}
        self.tail = get["tail"]
        self.state = {name: get[name] for name in self.layout.states}
        self.calls += 1
        if self.calls <= self.layout.warmup_frames:  # convolution buffers still filling
            self.state.update({name: np.zeros_like(self.state[name]) for name in self.layout.recurrent})
        return get["logits"].reshape(-1)

    def clip_logits(self, audio: np.ndarray) -> np.ndarray:
        """Logits after the last frame of a whole clip (same frames as the whole-clip model)."""
        clip = np.asarray(audio, np.float32).reshape(-1)
        lay = self.layout
        if clip.shape[0] < lay.window_samples:
            raise KwsKdError(f"clip of {clip.shape[0]} samples is shorter than one {lay.window_samples}-sample window")
        self.reset(clip[: lay.tail_samples])
        logits = None
        for k in range(lay.frames(len(clip))):
            start = lay.tail_samples + k * lay.hop_samples
            logits = self.push(clip[start : start + lay.hop_samples])
        return logits

    def logits_batch(self, clips: np.ndarray) -> np.ndarray:
        return np.stack([self.clip_logits(c) for c in clips])


def convert_streaming(whole_clip_model, outputs: dict[str, str | os.PathLike], *, calibration_audio: np.ndarray | None,
                      label: str, log=print) -> StreamingLayout:
    """Build the one-frame model of `whole_clip_model` and convert it to each `{mode: path}` (child process)."""
    from kws_kd.features import dynamic_range_safe, front_end_scopes
    from kws_kd.tflite.convert import Job, run_jobs

    model, layout = build_streaming_model(whole_clip_model)
    representative = None
    if "int8" in outputs:
        if calibration_audio is None or len(calibration_audio) == 0:
            raise KwsKdError(f"{label}: int8 streaming export needs calibration clips")
        every = max(1, layout.frames(calibration_audio.shape[1]) // 8)
        representative = keras_stream_inputs(model, layout, calibration_audio, every=every)
        log(f"calibrating on {len(representative['audio'])} frames (tail and state from the Keras streaming model)")
    with tempfile.TemporaryDirectory(prefix="kws-kd-streaming-") as tmp:
        jobs = []
        for safe in (False, True):
            modes = [m for m in outputs if (m == "dynamic") == safe]
            if not modes:
                continue
            saved = Path(tmp) / f"saved_model{'_dynamic' if safe else ''}"
            with dynamic_range_safe(model, safe):
                export_streaming_saved_model(model, layout, saved, label)
            jobs += [Job(saved, m, Path(outputs[m]), label) for m in modes]
        run_jobs(jobs, representative=representative, float_scopes=front_end_scopes(model))
    return layout


def streaming_runner(path: str | os.PathLike, num_threads: int | None = 1) -> tuple["StreamingTFLite", int] | None:
    """(runner, clip samples) when `path`'s sidecar says it is a streaming file, else None."""
    if not sidecar_path(path).exists():
        return None
    side = read_sidecar(path)
    if not side.get("streaming"):
        return None
    return StreamingTFLite(path, StreamingLayout.from_dict(side["streaming"]), num_threads), int(side["input_samples"])
