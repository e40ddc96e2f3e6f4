#!/usr/bin/env python3
"""Write the golden file that pins the Android app's logic to kws_kd.app_logic.

    python android_harness/make_golden.py [--out DIR]

Builds two tiny raw-audio classifiers with TensorFlow (a float32 one and a full
int8 one with int8 input and output), converts them to TFLite, writes their
sidecars in the `kws-kd export` schema (docs/architecture.md), then streams a
synthetic PCM signal through `kws_kd.app_logic.KeywordStream` with the REAL
models run by the LiteRT interpreter. Everything the app must reproduce is
recorded: the PCM, the chunk sizes it is fed in, the model input tensor for the
whole stream (per hop it is the window ending at that hop), the raw model
outputs, the posteriors, the smoothed posteriors and the decoded labels.

The JVM tests (`android_harness/test-jvm.sh`) replay the recorded outputs and
must reproduce every tensor; `tests/test_app_logic.py` checks the Python side
and re-runs the committed .tflite files to confirm the recorded outputs.
The models are tiny on purpose (0.1 s windows, 25 ms hop) so the file stays small.

`streaming_golden.json` pins the streaming path (one call per hop, tail and
state tensors carried between calls) the same way, with a STUB interpreter
instead of a real file: `stub_frame` below, a deterministic function of the
tensors it is handed (float64 arithmetic in a fixed order, so the Java test
stub computes it bit for bit). Two sidecars in the `kws-kd export --streaming`
schema (`stream_float.json`: float32 I/O; `stream_int8.json`: int8 audio,
tail, states and logits, with state input and output scales that differ, so
the carried values are requantized and clamped), a CRNN-like layout (a
convolution buffer plus a recurrent state held at zero for 2 warm-up calls),
and per hop every tensor handed to the stub and returned by it, the
posteriors, smoothed posteriors, decision and announcement. It also holds
`detection_events` answers on random sequences for the Java `Announcer`.
A REAL streaming file (LSTM-P, float and int8) is checked against
`StreamingTFLite` in `tests/test_app_logic_streaming.py` instead: it is too
large to commit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "app" / "src" / "test" / "resources" / "golden"

SAMPLE_RATE = 16000
INPUT_SAMPLES = 1600  # 0.1 s: small golden file, same code path as 1 s
FRAME = 160
LABELS = ["_silence_", "_unknown_", "yes", "no"]
HOP_MS = 25
SMOOTHING = 3
THRESHOLD = 0.4
STREAM_SAMPLES = 4800  # 9 hops
SUPPRESSION_MS = 100  # announcements: at most one per 100 ms (the app's default is 500)

# streaming golden: a stub "interpreter" with a CRNN-like layout (10 ms hops: 30 calls over the same PCM)
STREAM_HOP = 160
STREAM_WINDOW = 208  # tail of 48 samples
STREAM_STATES = {"conv0_buffer": (2, 3), "state_h": (4,)}
STREAM_WARMUP = 2
STREAM_RECURRENT = ("state_h",)
STREAM_SMOOTHING = 4
STREAM_THRESHOLD = 0.5
STREAM_SUPPRESSION_MS = 50
H_CLAMP = 4.0
# weights of the stub (see stub_frame); tuned so the 30 hops see every label, detections and announcements
STUB_W = [[0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.5, -1.0, 1.0], [1.0, 0.3, -0.5]]
STUB_B = [-0.2, -0.1, 0.05, 0.0]
STUB_V = [[-2.0, -1.0, 0.0, 0.0], [0.5, 0.0, 0.0, 2.0], [2.0, -1.0, 0.5, 0.0], [0.0, 2.0, 0.0, -0.5]]
STUB_A = [1.0, 0.0, -0.5, -1.0]


def _f32(x: float) -> float:
    return float(np.float32(x))


# int8 stub file: (scale, zero_point) per tensor; float32-representable scales, as LiteRT reports them
STREAM_INT8_Q = {
    "audio": (_f32(0.009392051957547665), -3),
    "tail": (_f32(0.009392051957547665), -3),
    "conv0_buffer": (_f32(0.01), -100),  # f0 < -0.28 clamps at -128
    "state_h": (_f32(0.02), 0),  # |h| > 2.54 clamps
    "logits": (_f32(0.05), 10),
    "tail_out": (_f32(0.009392051957547665), -3),
    "conv0_buffer_out": (_f32(0.0105), -99),
    "state_h_out": (_f32(0.0315), 1),
}


def synthetic_pcm(rng: np.random.Generator) -> np.ndarray:
    """Silence, a tone, a clipped chirp touching both int16 extremes, then noise."""
    t = np.arange(STREAM_SAMPLES) / SAMPLE_RATE
    x = np.zeros(STREAM_SAMPLES)
    x[800:2000] = 0.3 * np.sin(2 * np.pi * 440 * t[800:2000])
    chirp = 1.6 * np.sin(2 * np.pi * (200 + 3000 * t[2000:3200]) * t[2000:3200])
    x[2000:3200] = chirp
    x[3200:] = 0.05 * rng.standard_normal(STREAM_SAMPLES - 3200)
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    assert pcm.min() == -32768 and pcm.max() == 32767
    return pcm


def chunk_sizes(rng: np.random.Generator, total: int) -> list[int]:
    """Irregular AudioRecord-like reads: some tiny, some longer than a hop or a window."""
    sizes, left = [], total
    pattern = [1, 399, 1700, 37, 512, 3]
    i = 0
    while left > 0:
        n = pattern[i] if i < len(pattern) else int(rng.integers(1, 900))
        n = min(n, left)
        sizes.append(n)
        left -= n
        i += 1
    return sizes


def build_tflite(out_dir: Path, rng: np.random.Generator) -> tuple[bytes, bytes, np.ndarray]:
    """Return (float model bytes, int8 model bytes, representative audio)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    w1 = rng.normal(0, 3.0 / np.sqrt(FRAME), (FRAME, 8)).astype(np.float32)
    b1 = rng.normal(0, 0.1, (8,)).astype(np.float32)
    w2 = rng.normal(0, 2.0, (8, len(LABELS))).astype(np.float32)
    b2 = np.array([0.5, 0.0, -0.2, -0.3], dtype=np.float32)

    class Tiny(tf.Module):
        def __init__(self):
            self.w1, self.b1 = tf.constant(w1), tf.constant(b1)
            self.w2, self.b2 = tf.constant(w2), tf.constant(b2)

        @tf.function(input_signature=[tf.TensorSpec([1, INPUT_SAMPLES], tf.float32, name="audio")])
        def __call__(self, audio):
            frames = tf.reshape(audio, [INPUT_SAMPLES // FRAME, FRAME])
            h = tf.nn.relu(tf.matmul(frames, self.w1) + self.b1)
            pooled = tf.reduce_mean(h, axis=0, keepdims=True)
            return tf.matmul(pooled, self.w2) + self.b2

    module = Tiny()
    fn = module.__call__.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    float_bytes = conv.convert()

    calib = []
    for k in range(64):
        amp = [0.0, 0.02, 0.3, 1.0][k % 4]
        calib.append(np.clip(amp * rng.standard_normal((1, INPUT_SAMPLES)), -1, 1).astype(np.float32))

    def representative():
        for c in calib:
            yield [c]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    int8_bytes = conv.convert()
    return float_bytes, int8_bytes, np.concatenate(calib)


def tensor_entry(detail: dict, kind: str | None = None) -> dict:
    dtype = np.dtype(detail["dtype"]).name
    scale, zp = detail["quantization"]
    entry = {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape"]],
        "dtype": dtype,
        "quantization": {"scale": float(scale), "zero_point": int(zp)} if dtype == "int8" else None,
    }
    if kind:
        entry["kind"] = kind
    return entry


def sidecar_for(interp, quantize: str, multi_label: bool, size: int) -> dict:
    return {
        "format": "kws-kd-tflite",
        "version": 1,
        "model": "golden_tiny",
        "quantize": quantize,
        "streaming": False,
        "labels": LABELS,
        "multi_label": multi_label,
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": INPUT_SAMPLES / SAMPLE_RATE,
        "input_samples": INPUT_SAMPLES,
        "input": tensor_entry(interp.get_input_details()[0]),
        "output": tensor_entry(interp.get_output_details()[0], "logits"),
        "front_end": None,
        "source_run": None,
        "test_metrics": None,
        "ops": {},
        "size_bytes": size,
    }


def interpreter_model(interp):
    """A KeywordStream model callable backed by the LiteRT interpreter."""
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
        interp.invoke()
        return interp.get_tensor(out["index"]).reshape(-1).copy()

    return run


def as_json_floats(a: np.ndarray) -> list[float]:
    """float32/float64 values as Python floats: repr round-trips them exactly."""
    return [float(v) for v in np.asarray(a).reshape(-1)]


def run_case(name, sidecar_file, model_file, sidecar_obj, interp, pcm, chunks) -> dict:
    from kws_kd import app_logic

    sc = app_logic.parse_sidecar(json.dumps(sidecar_obj), sidecar_file)
    stream = app_logic.KeywordStream(sc, interpreter_model(interp), HOP_MS, SMOOTHING, THRESHOLD, SUPPRESSION_MS / 1000)
    hops, pos = [], 0
    for n in chunks:
        hops.extend(stream.feed(pcm[pos : pos + n]))
        pos += n
    whole = app_logic.prepare_input(pcm, sc.input)
    for h in hops:  # the per-hop tensor is the stream tensor's window: check before recording
        assert np.array_equal(h.model_input, whole[h.end_sample - sc.input_samples : h.end_sample])
    is_int = sc.output.dtype == "int8"
    return {
        "name": name,
        "sidecar": sidecar_file,
        "model": model_file,
        "hop_ms": HOP_MS,
        "smoothing_windows": SMOOTHING,
        "threshold": THRESHOLD,
        "suppression_ms": SUPPRESSION_MS,
        "input_dtype": sc.input.dtype,
        "input": [int(v) for v in whole] if sc.input.dtype == "int8" else as_json_floats(whole),
        "hops": [
            {
                "end_sample": h.end_sample,
                "raw_output": [int(v) for v in h.raw_output] if is_int else as_json_floats(h.raw_output),
                "posteriors": as_json_floats(h.posteriors),
                "smoothed": as_json_floats(h.smoothed),
                "label_index": h.decision.index,
                "label": h.decision.label,
                "confidence": h.decision.confidence,
                "detected": h.decision.detected,
                "announced": h.announced,
            }
            for h in hops
        ],
    }


# ---------------------------------------------------------------------------
# streaming golden (stub interpreter)


def _round_half_away(x: float) -> float:
    return math.copysign(math.floor(abs(x) + 0.5), x) if x != 0 else 0.0


def _real(values, spec) -> list[float]:
    """What the stub computes on: int8 dequantized (q - zp) * scale in float64, float32 widened."""
    if spec.dtype == "int8":
        q = spec.quantization
        return [(float(v) - q.zero_point) * q.scale for v in values]
    return [float(v) for v in values]


def _encode(values: list[float], spec) -> np.ndarray:
    """The stub's output tensor: float32 (round to nearest), or int8 round-half-away + clamp."""
    if spec.dtype == "int8":
        q = spec.quantization
        return np.array([min(127, max(-128, int(_round_half_away(v / q.scale)) + q.zero_point)) for v in values],
                        dtype=np.int8)
    return np.array(values, dtype=np.float32)


def stub_frame(spec):
    """The stub interpreter for a StreamingSpec: inputs [audio, tail, conv0_buffer, state_h] -> outputs.

    On real values, float64, every sum left to right (the Java test stub is the same code):
        frame = tail ++ audio                       (window samples)
        f = [mean(frame), mean(|frame|), mean(frame * frame)]
        conv0_buffer_out = [buffer row 1, f]        (a 'valid' conv's last frames)
        c[j] = buffer[0][j] + buffer[1][j] + f[j]
        state_h_out[u] = clamp(0.5 h[u] + ((W[u][0] c[0] + W[u][1] c[1]) + W[u][2] c[2]) + B[u], -4, 4)
        logits[k] = (((V[k][0] h'[0] + V[k][1] h'[1]) + V[k][2] h'[2]) + V[k][3] h'[3]) + A[k]
        tail_out = frame[hop:]
    """
    audio_s, tail_s, buf_s, h_s = spec.inputs
    logits_s, tail_out_s, buf_out_s, h_out_s = spec.outputs

    def run(inputs):
        audio, tail, buf, h = (_real(np.asarray(x).reshape(-1), s) for x, s in zip(inputs, spec.inputs))
        frame = tail + audio
        n = float(len(frame))
        s0 = s1 = s2 = 0.0
        for v in frame:
            s0 += v
            s1 += abs(v)
            s2 += v * v
        f = [s0 / n, s1 / n, s2 / n]
        c = [buf[j] + buf[3 + j] + f[j] for j in range(3)]
        h2 = []
        for u in range(4):
            v = 0.5 * h[u] + ((STUB_W[u][0] * c[0] + STUB_W[u][1] * c[1]) + STUB_W[u][2] * c[2]) + STUB_B[u]
            h2.append(min(H_CLAMP, max(-H_CLAMP, v)))
        logits = [(((STUB_V[k][0] * h2[0] + STUB_V[k][1] * h2[1]) + STUB_V[k][2] * h2[2]) + STUB_V[k][3] * h2[3])
                  + STUB_A[k] for k in range(len(STUB_A))]
        return [_encode(logits, logits_s), _encode(frame[spec.hop_samples:], tail_out_s),
                _encode(buf[3:] + f, buf_out_s), _encode(h2, h_out_s)]

    return run


def streaming_sidecar(int8: bool) -> dict:
    """A sidecar in the exporter's schema (kws_kd.tflite.sidecar.build_sidecar with streaming=...)."""
    from kws_kd.tflite.streaming import StreamingLayout

    layout = StreamingLayout(STREAM_HOP, STREAM_WINDOW, dict(STREAM_STATES), STREAM_WARMUP, STREAM_RECURRENT)

    def entry(name: str, role: str, shape) -> dict:
        q = STREAM_INT8_Q[role] if int8 else None
        return {"name": name, "shape": [1, *shape], "dtype": "int8" if int8 else "float32",
                "quantization": {"scale": q[0], "zero_point": q[1]} if q else None}

    inputs = {"audio": entry("audio", "audio", (STREAM_HOP,)), "tail": entry("tail", "tail", (layout.tail_samples,))}
    inputs.update({n: entry(n, n, shape) for n, shape in STREAM_STATES.items()})
    inputs = dict(sorted(inputs.items()))  # LiteRT lists signature inputs by name, not in layout order
    roles = [("logits", (len(LABELS),)), ("tail_out", (layout.tail_samples,))]
    roles += [(f"{n}_out", shape) for n, shape in STREAM_STATES.items()]
    outputs = {role: entry(f"output_{i}", role, shape) for i, (role, shape) in enumerate(roles)}
    return {
        "format": "kws-kd-tflite",
        "version": 1,
        "model": "golden_stub_streaming",
        "quantize": "int8" if int8 else "float32",
        "streaming": {**layout.to_dict(), "tensors": {"inputs": inputs, "outputs": outputs}},
        "labels": LABELS,
        "multi_label": False,
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": STREAM_SAMPLES / SAMPLE_RATE,
        "input_samples": STREAM_SAMPLES,
        "input": inputs["audio"],
        "output": {**outputs["logits"], "kind": "logits"},
        "front_end": None,
        "source_run": None,
        "test_metrics": None,
        "ops": {},
        "size_bytes": 0,
    }


def _values(a: np.ndarray) -> list:
    a = np.asarray(a).reshape(-1)
    return [int(v) for v in a] if a.dtype == np.int8 else as_json_floats(a)


def run_streaming_case(name: str, sidecar_file: str, sidecar_obj: dict, pcm: np.ndarray, chunks: list[int]) -> dict:
    from kws_kd import app_logic

    sc = app_logic.parse_sidecar(json.dumps(sidecar_obj), sidecar_file)
    spec = sc.streaming
    stream = app_logic.KeywordStream(sc, stub_frame(spec), HOP_MS, STREAM_SMOOTHING, STREAM_THRESHOLD,
                                     STREAM_SUPPRESSION_MS / 1000)
    hops, pos = [], 0
    for n in chunks:
        hops.extend(stream.feed(pcm[pos : pos + n]))
        pos += n
    assert len(hops) == len(pcm) // STREAM_HOP
    audio = app_logic.prepare_input(pcm, spec.audio)
    for h in hops:  # the audio tensor is the stream tensor's newest hop
        assert np.array_equal(h.frame_inputs[0], audio[h.end_sample - STREAM_HOP : h.end_sample])
    in_names = [t.name for t in spec.inputs]
    out_names = ["logits", "tail_out", *(f"{s.name}_out" for s in spec.states)]
    return {
        "name": name,
        "sidecar": sidecar_file,
        "smoothing_windows": STREAM_SMOOTHING,
        "threshold": STREAM_THRESHOLD,
        "suppression_ms": STREAM_SUPPRESSION_MS,
        "input_dtype": spec.audio.dtype,
        "audio_input": _values(audio),
        "hops": [
            {
                "end_sample": h.end_sample,
                "inputs": {n: _values(x) for n, x in zip(in_names[1:], h.frame_inputs[1:])},  # audio: audio_input
                "outputs": {n: _values(y) for n, y in zip(out_names, h.frame_outputs)},
                "posteriors": as_json_floats(h.posteriors),
                "smoothed": as_json_floats(h.smoothed),
                "label_index": h.decision.index,
                "label": h.decision.label,
                "confidence": h.decision.confidence,
                "detected": h.decision.detected,
                "announced": h.announced,
            }
            for h in hops
        ],
    }


def announcer_sequences(rng: np.random.Generator) -> list[dict]:
    """`detection_events` on random hop sequences (runs of labels and detections), for the Java Announcer."""
    from kws_kd.app_logic import detection_events

    out = []
    for k, (hop_s, suppression_s, n) in enumerate([(0.02, 0.5, 200), (0.1, 0.5, 60), (0.01, 0.05, 150),
                                                   (0.25, 0.0, 40), (0.1, 0.3, 60)]):
        times = np.arange(1, n + 1) * hop_s  # 0.1 * k is inexact: the 1e-9 tolerance decides
        index = np.repeat(rng.integers(0, 4, n), rng.integers(1, 6, n))[:n]
        detected = np.repeat(rng.random(n) < 0.6, rng.integers(1, 8, n))[:n]
        fired = detection_events(times, index, detected, suppression_s)
        out.append({"suppression_s": suppression_s, "times_s": as_json_floats(times), "index": [int(i) for i in index],
                    "detected": [bool(d) for d in detected], "fired": [int(i) for i in fired]})
    return out


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the golden file, models and sidecars")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(args.seed)
    pcm = synthetic_pcm(rng)
    chunks = chunk_sizes(rng, len(pcm))
    float_bytes, int8_bytes, _ = build_tflite(args.out, rng)

    files: dict[str, bytes] = {"tiny_float.tflite": float_bytes, "tiny_int8.tflite": int8_bytes}
    cases = []
    for stem, blob, quantize, multi, case in [
        ("tiny_float", float_bytes, "float32", False, "float_softmax"),
        ("tiny_int8", int8_bytes, "int8", False, "int8_softmax"),
        ("tiny_float_multilabel", float_bytes, "float32", True, "float_sigmoid"),
    ]:
        interp = Interpreter(model_content=blob, num_threads=1)
        interp.allocate_tensors()
        sidecar = sidecar_for(interp, quantize, multi, len(blob))
        model_file = "tiny_int8.tflite" if stem == "tiny_int8" else "tiny_float.tflite"
        files[f"{stem}.json"] = (json.dumps(sidecar, indent=2) + "\n").encode()
        cases.append(run_case(case, f"{stem}.json", model_file, sidecar, interp, pcm, chunks))

    golden = {
        "generator": "python android_harness/make_golden.py",
        "sample_rate": SAMPLE_RATE,
        "pcm": [int(v) for v in pcm],
        "chunks": chunks,
        "cases": cases,
    }
    files["app_logic_golden.json"] = (json.dumps(golden, separators=(",", ":")) + "\n").encode()

    stream_cases = []
    for stem, int8, case in [("stream_float", False, "stream_float"), ("stream_int8", True, "stream_int8")]:
        sidecar = streaming_sidecar(int8)
        files[f"{stem}.json"] = (json.dumps(sidecar, indent=2) + "\n").encode()
        stream_cases.append(run_streaming_case(case, f"{stem}.json", sidecar, pcm, chunks))
    streaming_golden = {
        "generator": "python android_harness/make_golden.py",
        "sample_rate": SAMPLE_RATE,
        "pcm": [int(v) for v in pcm],
        "chunks": chunks,
        "stub": {"doc": " ".join(stub_frame.__doc__.split()), "W": STUB_W, "B": STUB_B, "V": STUB_V, "A": STUB_A,
                 "h_clamp": H_CLAMP},
        "cases": stream_cases,
        "announcer": announcer_sequences(np.random.default_rng(args.seed + 1)),
    }
    files["streaming_golden.json"] = (json.dumps(streaming_golden, separators=(",", ":")) + "\n").encode()
    for name, blob in files.items():
        write_atomic(args.out / name, blob)
    for c in cases + stream_cases:
        labels = " ".join(h["label"] + ("!" if h["announced"] else "*" if h["detected"] else "") for h in c["hops"])
        print(f"{c['name']:<14} {len(c['hops'])} hops: {labels}")
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
