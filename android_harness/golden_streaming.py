"""The streaming half of the golden files (`streaming_golden.json`), and what both halves share.

`make_golden.py` writes both; this part pins the app's streaming path with a
STUB interpreter (`stub_frame`: float64 arithmetic in a fixed order, which the
Java test stub computes bit for bit) over two sidecars in the `kws-kd export
--streaming` schema, and records `detection_events` answers for the Java
`Announcer`. `tests/test_app_logic_streaming.py` loads this file to re-run the
stub. Int8 outputs of the stub round half away from zero (`kws_kd.int8`).
"""

from __future__ import annotations

import json

import numpy as np

from kws_kd.audio import SAMPLE_RATE
from kws_kd.int8 import quantize

LABELS = ["_silence_", "_unknown_", "yes", "no"]
HOP_MS = 25
STREAM_SAMPLES = 4800  # 9 hops of the whole-clip case; 30 calls of the streaming one

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



def as_json_floats(a: np.ndarray) -> list[float]:
    """float32/float64 values as Python floats: repr round-trips them exactly."""
    return [float(v) for v in np.asarray(a).reshape(-1)]


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
        return quantize(np.array(values, dtype=np.float64), q.scale, q.zero_point)
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


def hop_decision(h) -> dict:
    """What every golden hop records after its model outputs: posteriors, smoothing, decision, announcement."""
    return {
        "posteriors": as_json_floats(h.posteriors),
        "smoothed": as_json_floats(h.smoothed),
        "label_index": h.decision.index,
        "label": h.decision.label,
        "confidence": h.decision.confidence,
        "detected": h.decision.detected,
        "announced": h.announced,
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
                **hop_decision(h),
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
