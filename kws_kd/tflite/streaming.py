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

Which students stream: LSTM-P (state: the LSTM's r and c) and CRNN (state:
the last frames each 'valid' time convolution needs, plus the GRU's h; for
the first `warmup_frames` calls the convolution buffers are still filling, so
the runner keeps the recurrent state at zero, exactly as the whole-clip model
starts its GRU on the first complete convolution output). The bidirectional
Att-RNN / MHAtt-RNN need the whole clip before the backward pass starts;
TC-ResNet's strided time convolutions would need per-layer phase bookkeeping
(not built).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError

STREAMABLE = ("lstm_p", "crnn")
WHY_NOT = {
    "att_rnn": "its recurrence is bidirectional: the backward pass needs the whole clip",
    "mhatt_rnn": "its recurrence is bidirectional: the backward pass needs the whole clip",
    "tc_resnet": "its strided time convolutions would need per-layer phase state (not built)",
}


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
    if model_name not in STREAMABLE:
        why = WHY_NOT.get(model_name, "it has no streaming form")
        raise KwsKdError(f"--streaming: {model_name} cannot stream ({why}); streamable students: "
                         f"{', '.join(STREAMABLE)}. Export it without --streaming.")


def build_streaming_model(whole_clip_model):
    """The one-frame Keras model sharing the weights of a built streamable student (any clip length).

    Returns (model, layout). Inputs: audio, tail, then the states in layout
    order; outputs: logits, tail_out, then the states' next values.
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
    mfcc = info.layers["mfcc"](frame)  # [1, 1, coeffs]
    step = {"lstm_p": _lstm_p_step, "crnn": _crnn_step}[info.spec.name]
    states, logits, next_states, warmup, recurrent = step(info, mfcc)
    layout = StreamingLayout(hop, window, {k: tuple(int(d) for d in v.shape[1:]) for k, v in states.items()},
                             warmup, recurrent)
    model = keras.Model([audio, tail, *states.values()], [logits, frame[:, hop:], *next_states],
                        name=f"{info.spec.name}_streaming")
    return model, layout


def _lstm_p_step(info, mfcc):
    """One LSTM-P frame: the cell on this frame's MFCCs, logits from its output (dropout: identity)."""
    import keras
    from keras import ops

    cell = info.layers["cell"]
    r_in = keras.Input((cell.projection,), batch_size=1, name="state_r")
    c_in = keras.Input((cell.units,), batch_size=1, name="state_c")
    out, (r, c) = cell(ops.reshape(mfcc, (1, -1)), [r_in, c_in])
    return {"state_r": r_in, "state_c": c_in}, info.layers["logits"](out), [r, c], 0, ()


def _crnn_step(info, mfcc):
    """One CRNN frame: each 'valid' conv sees its buffered last k-1 input frames + the new one, then one GRU step."""
    import keras
    from keras import ops

    layers, config = info.layers, info.config
    x = ops.expand_dims(mfcc, -1)  # [1, 1, coeffs, 1]
    states, nexts, warmup = {}, [], 0
    for i in range(len(config.cnn_filters)):
        k = int(config.cnn_kernels[i][0])
        buf = keras.Input((k - 1, *x.shape[2:]), batch_size=1, name=f"conv{i}_buffer")
        window = ops.concatenate([buf, x], axis=1)  # [1, k, F, C]
        states[f"conv{i}_buffer"] = buf
        nexts.append(window[:, 1:])
        x = layers[f"conv{i}"](window)  # [1, 1, F', C']
        warmup += k - 1
    cell = layers["cell"]
    h_in = keras.Input((cell.units,), batch_size=1, name="state_h")
    states["state_h"] = h_in
    out, (h,) = cell(ops.reshape(x, (1, -1)), [h_in])
    logits = layers["logits"](layers["dense2"](layers["dense1"](out)))
    return states, logits, nexts + [h], warmup, ("state_h",)


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
        from kws_kd.tflite.runner import quantize_input

        d = self.inputs[name]
        scale, zero = d.get("quantization", (0.0, 0))
        if np.dtype(d["dtype"]) == np.float32 or not scale:
            return x.astype(np.float32)
        return quantize_input(x, scale, zero, d["dtype"])

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


def describe_signature(path: str | os.PathLike, layout: StreamingLayout) -> dict:
    """{"inputs": {name: detail}, "outputs": {role: detail}} of a streaming file, for the sidecar.

    Output roles are logits, tail_out and STATE_out (Keras's output_0.. order).
    """
    from ai_edge_litert.interpreter import Interpreter

    from kws_kd.tflite.runner import _quant

    it = Interpreter(model_path=str(path))
    (key,) = it.get_signature_list()
    runner = it.get_signature_runner(key)

    def describe(name: str, d: dict) -> dict:
        return {"name": name, "shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "quantization": _quant(d)}

    inputs = {n: describe(n, d) for n, d in runner.get_input_details().items()}
    outs = runner.get_output_details()
    order = sorted(outs, key=lambda k: int(k.rsplit("_", 1)[-1]))
    roles = ["logits", "tail_out"] + [f"{n}_out" for n in layout.states]
    return {"inputs": inputs, "outputs": {role: describe(name, outs[name]) for role, name in zip(roles, order)}}


def convert_streaming(whole_clip_model, outputs: dict[str, str | os.PathLike], *, calibration_audio: np.ndarray | None,
                      label: str, log=print) -> StreamingLayout:
    """Build the one-frame model of `whole_clip_model` and convert it to each `{mode: path}` (child process)."""
    from kws_kd.features import dynamic_range_safe
    from kws_kd.tflite.convert import Job, front_end_scopes, run_jobs

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
    from kws_kd.tflite.sidecar import read_sidecar, sidecar_path

    if not sidecar_path(path).exists():
        return None
    side = read_sidecar(path)
    if not side.get("streaming"):
        return None
    return StreamingTFLite(path, StreamingLayout.from_dict(side["streaming"]), num_threads), int(side["input_samples"])


def streaming_latency(path: str | os.PathLike, *, threads: int = 1, runs: int = 20, warmup: int = 2,
                      seed: int = 0) -> dict:
    """Per-hop and per-clip latency (ms) of a streaming file: a clip is every hop of its sidecar length.

    The per-clip figure is what compares with a whole-clip file: the same audio,
    processed as it arrives.
    """
    from kws_kd.bench.host import summarize_ms, time_invoke

    found = streaming_runner(path, threads)
    if found is None:
        raise KwsKdError(f"{path}: not a streaming file (its sidecar has no streaming entry)")
    runner, samples = found
    clip = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    hop = clip[: runner.layout.hop_samples]
    per_hop = summarize_ms(time_invoke(lambda: runner.push(hop), max(runs * 10, 100), warmup * 10))
    per_clip = summarize_ms(time_invoke(lambda: runner.clip_logits(clip), runs, warmup))
    return {**per_clip, "hop_median_ms": per_hop["median_ms"], "hop_p90_ms": per_hop["p90_ms"],
            "frames": runner.layout.frames(samples), "threads": threads, "streaming": True,
            "model": Path(path).name, "size_bytes": Path(path).stat().st_size, "input_samples": samples}
