"""Phone latency over adb with LiteRT's benchmark_model; appends results beside the host table.

Thin wrapper over kws_kd.bench.adb (same as `kws-kd bench adb`). With no phone
attached it exits non-zero with "no Android device attached (adb devices lists none)".

    python benchmarks/adb_latency.py --benchmark-binary ./benchmark_model /tmp/kws-kd-bench/*_1s_int8.tflite \
        --threads 1 4 --taskset f0 --out docs/adb_latency.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--benchmark-binary", required=True)
    p.add_argument("--serial", default=None)
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--no-xnnpack", action="store_true")
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--taskset", default=None)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--out", default=str(REPO / "docs" / "adb_latency.json"))
    args = p.parse_args(argv)
    from kws_kd.atomic import atomic_write_text
    from kws_kd.bench.adb import run_adb_benchmark
    from kws_kd.errors import KwsKdError

    rows = []
    try:
        for model in args.models:
            for th in args.threads:
                r = run_adb_benchmark(args.benchmark_binary, model, serial=args.serial, threads=th,
                                      xnnpack=not args.no_xnnpack, gpu=args.gpu, taskset=args.taskset,
                                      num_runs=args.runs)  # fmt: skip
                rows.append(r)
                print(f"{r['model']:36s} {th}t  avg {r['avg_us'] / 1000:8.3f} ms  on {r['device']}", flush=True)
    except KwsKdError as exc:
        print(f"adb_latency: error: {exc}", file=sys.stderr)
        return 2
    atomic_write_text(args.out, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
