"""MFCC front-end forms in LiteRT, measured in one run on this CPU (XNNPACK, 1 thread).

The front end is inside every student, and at 8 s it was half of TC-ResNet's
int8 latency. This times, interleaved in one process so load drifts hit every
form alike:

- `rfft2d`: `tf.signal.stft` (RFFT2D + COMPLEX_ABS), mel matmul, DCT as
  multiply + sum: what every non-dynamic export used before 2026-11-26;
- `matmul-dft n1=16` and `matmul-dft n1=32 (shipped)`: the two-stage matmul
  DFT of `kws_kd.matmul_dft` with mel and DCT matmuls;
- `dynamic-range form`: what `--quantize dynamic` files carry (RFFT2D, mel and
  DCT as multiply + sum);

first the front end alone at 1 s and 8 s, then whole TC-ResNet int8 files at
8 s with the old and the shipped front end (random weights, int8 calibrated on
noise). Writes benchmarks/results/front_end.json and prints a table.

    python benchmarks/front_end.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def _rfft2d_call(self, audio):
    """The pre-2026-11-26 non-dynamic front end, kept here only to measure against:
    RFFT2D spectrum, matmul mel, multiply + sum DCT."""
    import tensorflow as tf

    mel = tf.tensordot(self.rfft2d_magnitude(audio), tf.constant(self._mel), axes=1)
    log_mel = tf.math.log(tf.maximum(mel, self.config.log_floor))
    return tf.reduce_sum(log_mel[..., :, None] * tf.constant(self._dct), axis=-2)


def _front_end(form: str, num_coeffs: int):
    from kws_kd.features import FrontEndConfig, MfccFrontEnd
    from kws_kd.matmul_dft import MatmulDft

    layer = MfccFrontEnd(FrontEndConfig(num_coeffs=num_coeffs), quantization_safe=form == "dynamic-range form")
    if form == "rfft2d":
        layer.call = types.MethodType(_rfft2d_call, layer)
    elif form == "matmul-dft n1=16":
        layer._dft = MatmulDft(layer._window, layer.config.fft_length, layer._bin_hi, n1=16)
    return layer


def _convert(fn, samples: int) -> bytes:
    import tensorflow as tf

    f = tf.function(fn, input_signature=[tf.TensorSpec([1, samples], tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return conv.convert()


def _interleaved(contents: dict[str, bytes | Path], samples: int, runs: int) -> dict[str, dict]:
    """Median / p90 ms of each file, timed round-robin so machine load hits all alike."""
    from ai_edge_litert.interpreter import Interpreter

    from kws_kd.tflite.runner import op_counts

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, samples)).astype(np.float32)
    its, times, out = {}, {}, {}
    for name, c in contents.items():
        source = {"model_path": str(c)} if isinstance(c, Path) else {"model_content": c}
        it = Interpreter(**source, num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        for _ in range(5):
            it.invoke()
        its[name], times[name] = it, []
    for _ in range(runs):
        for name, it in its.items():
            t = time.perf_counter()
            it.invoke()
            times[name].append((time.perf_counter() - t) * 1e3)
    for name, c in contents.items():
        size = c.stat().st_size if isinstance(c, Path) else len(c)
        if isinstance(c, Path):
            ops = sum(op_counts(c).values())
        else:
            with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
                f.write(c)
                f.flush()
                ops = sum(op_counts(f.name).values())
        out[name] = {"median_ms": float(np.median(times[name])), "p90_ms": float(np.percentile(times[name], 90)),
                     "size_kb": size / 1024, "ops": ops}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "front_end.json"))
    args = p.parse_args(argv)

    import keras

    from kws_kd.atomic import atomic_write_text
    from kws_kd.features import front_end_scopes, front_ends
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student
    from kws_kd.tflite.convert import Job, export_saved_model, run_jobs

    forms = ["rfft2d", "matmul-dft n1=16", "matmul-dft n1=32 (shipped)", "dynamic-range form"]
    rows, start = [], time.monotonic()
    for seconds in (1, 8):
        samples = seconds * SR
        contents = {}
        for form in forms:
            layer = _front_end(form, 40)
            contents[form] = _convert(lambda a, layer=layer: layer(a), samples)
        for form, r in _interleaved(contents, samples, args.runs).items():
            rows.append({"what": f"front end alone, {seconds} s", "form": form, **r})
            print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory(prefix="kws-kd-front-end-") as tmp:
        tmp = Path(tmp)
        keras.utils.set_random_seed(0)
        model = strip(build_student("tc_resnet", 12, 8 * SR, for_export=True))
        mfcc = front_ends(model)[0]
        jobs = []
        for form in ("rfft2d", "matmul-dft n1=32 (shipped)"):
            if form == "rfft2d":
                mfcc.call = types.MethodType(_rfft2d_call, mfcc)
            else:
                del mfcc.call  # back to the class's method
            sm = tmp / f"sm_{len(jobs)}"
            export_saved_model(model, sm, "tc_resnet")
            jobs.append(Job(sm, "int8", tmp / f"tc_{len(jobs)}.tflite", form))
        rep = np.random.default_rng(0).normal(0, 0.1, (16, 8 * SR)).astype(np.float32)
        run_jobs(jobs, representative=rep, float_scopes=front_end_scopes(model))
        for form, r in _interleaved({j.label: j.out for j in jobs}, 8 * SR, args.runs).items():
            rows.append({"what": "tc_resnet int8, 8 s", "form": form, **r})
            print(rows[-1], flush=True)

    lines = ["| what | form | size (KB) | ops | median ms | p90 ms |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['form']} | {r['size_kb']:.0f} | {r['ops']} | {r['median_ms']:.2f} "
                     f"| {r['p90_ms']:.2f} |")
    print("\n".join(lines))
    result = {"meta": {"runs": args.runs, "threads": 1, "xnnpack": True, "load_average": list(os.getloadavg()),
                       "wall_s": time.monotonic() - start, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "note": "one process, files timed round-robin; random weights"},
              "rows": rows, "markdown": lines}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
