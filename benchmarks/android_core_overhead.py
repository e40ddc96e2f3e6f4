"""What the Android app's own logic costs per hop, apart from the model.

Per inference the app copies the ring buffer out, converts int16 PCM to the
model's float32 or int8 input, turns the output into posteriors, smooths and
decodes them (android_harness/app/src/main/java/org/kwskd/app/core/). This
times that path with a zero-cost model, for 1 s and 8 s windows and both input
dtypes, on the host JVM (compiled with javac like android_harness/test-jvm.sh),
and the numpy reference kws_kd.app_logic.KeywordStream for comparison. A phone
core is slower than this host: read the JVM column as a lower bound, to compare
with the model latency (milliseconds) and the 250 ms hop budget.

    python benchmarks/android_core_overhead.py [--hops 400] [--out benchmarks/results/android_core_overhead.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "android_harness" / "app" / "src" / "main" / "java" / "org" / "kwskd" / "app" / "core"
BENCH = ROOT / "android_harness" / "bench" / "org" / "kwskd" / "app" / "core" / "CoreBench.java"


def jvm_rows(hops: int, warmup: int) -> list[dict]:
    if not shutil.which("javac") or not shutil.which("java"):
        print("javac/java not found: JVM rows skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        sources = sorted(str(p) for p in CORE.glob("*.java")) + [str(BENCH)]
        subprocess.run(["javac", "-nowarn", "--release", "11", "-d", tmp, *sources], check=True)
        out = subprocess.run(["java", "-cp", tmp, "org.kwskd.app.core.CoreBench", str(hops), str(warmup)],
                             check=True, capture_output=True, text=True, timeout=600).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in rows:
        r["impl"] = "java (host JVM)"
    return rows


def python_rows(hops: int, warmup: int) -> list[dict]:
    from kws_kd import app_logic as al

    labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    rows = []
    for seconds in (1, 8):
        for dtype in ("float32", "int8"):
            samples = seconds * 16000
            quant = {"scale": 0.0078431377, "zero_point": -1} if dtype == "int8" else None
            sc = al.parse_sidecar(json.dumps({
                "format": "kws-kd-tflite", "version": 1, "labels": labels, "multi_label": False,
                "sample_rate": 16000, "input_samples": samples,
                "input": {"shape": [1, samples], "dtype": dtype, "quantization": quant},
                "output": {"shape": [1, 12], "dtype": dtype, "quantization": quant, "kind": "logits"},
            }), "bench")  # fmt: skip
            out = np.zeros(12, dtype=np.int8 if dtype == "int8" else np.float32)
            stream = al.KeywordStream(sc, lambda x: out, 250, 3, 0.5)
            hop = al.hop_samples(250, 16000)
            chunk = (np.random.default_rng(0).standard_normal(hop) * 3000).astype(np.int16)
            stream.feed(np.zeros(samples - hop, np.int16))
            times = []
            for i in range(warmup + hops):
                t0 = time.perf_counter()
                n = len(stream.feed(chunk))
                dt = time.perf_counter() - t0
                assert n == 1
                if i >= warmup:
                    times.append(dt * 1e6)
            times.sort()
            rows.append({"window_samples": samples, "dtype": dtype, "hops": hops, "impl": "python (numpy reference)",
                         "median_us": round(times[hops // 2], 2), "p90_us": round(times[int(0.9 * (hops - 1))], 2),
                         "min_us": round(times[0], 2)})  # fmt: skip
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hops", type=int, default=400, help="timed hops per configuration")
    ap.add_argument("--warmup", type=int, default=200, help="untimed hops first (JIT warm-up)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "android_core_overhead.json")
    args = ap.parse_args(argv)

    rows = jvm_rows(args.hops, args.warmup) + python_rows(args.hops, min(args.warmup, 20))
    print(f"{'impl':<26} {'window':>8} {'dtype':>8} {'median us':>10} {'p90 us':>9} {'min us':>9}")
    for r in rows:
        print(f"{r['impl']:<26} {r['window_samples'] / 16000:>7.0f}s {r['dtype']:>8} "
              f"{r['median_us']:>10.1f} {r['p90_us']:>9.1f} {r['min_us']:>9.1f}")  # fmt: skip

    from kws_kd.atomic import atomic_write_text

    atomic_write_text(args.out, json.dumps({"hop_ms": 250, "rows": rows}, indent=2) + "\n")
    csv_path = args.out.with_suffix(".csv")
    with tempfile.NamedTemporaryFile("w", newline="", delete=False, dir=args.out.parent, suffix=".tmp") as f:
        w = csv.DictWriter(f, fieldnames=["impl", "window_samples", "dtype", "hops", "median_us", "p90_us", "min_us"])
        w.writeheader()
        w.writerows(rows)
    Path(f.name).replace(csv_path)
    print(f"wrote {args.out} and {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
