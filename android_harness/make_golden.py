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
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from golden_streaming import (  # the sibling module: this script's folder is on sys.path
    H_CLAMP,
    HOP_MS,
    LABELS,
    STREAM_SAMPLES,
    STUB_A,
    STUB_B,
    STUB_V,
    STUB_W,
    announcer_sequences,
    as_json_floats,
    hop_decision,
    run_streaming_case,
    streaming_sidecar,
    stub_frame,
)

from kws_kd.audio import SAMPLE_RATE

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "app" / "src" / "test" / "resources" / "golden"

INPUT_SAMPLES = 1600  # 0.1 s: small golden file, same code path as 1 s
FRAME = 160
SMOOTHING = 3
THRESHOLD = 0.4
SUPPRESSION_MS = 100  # announcements: at most one per 100 ms (the app's default is 500)


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
                **hop_decision(h),
            }
            for h in hops
        ],
    }


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
    sys.exit(main())
