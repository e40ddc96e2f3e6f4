"""What the export fixes bought, measured in one run on this CPU (LiteRT, XNNPACK, 1 thread).

Three comparisons, each old vs new in the same process:

1. Mel front end at 8 s: the broadcast MUL+SUM form (what every export used
   before; now only `--quantize dynamic`) vs one matmul, in TC-ResNet float32
   and int8 files.
2. LSTM-P at 8 s: the whole-clip unrolled int8 file vs the streaming int8
   file (one 20 ms hop per call): size, op count, latency per clip (all 399
   hops) and per hop.
3. Att-RNN at 1 s int8: size and op count with short tensor names and
   per-tensor dense scales (the docs/latency.md figure before the fix: 1,430 KB).

Random weights (latency and size do not depend on the values); int8 calibrated
on noise. Writes benchmarks/results/export_fixes.json and prints a table.

    python benchmarks/export_fixes.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def _latency(path: Path, runs: int) -> dict:
    from kws_kd.bench.host import host_latency

    return host_latency(path, threads=1, runs=runs, warmup=max(2, runs // 5))


def _row(name: str, path: Path, lat: dict) -> dict:
    from kws_kd.tflite.runner import op_counts

    return {"file": name, "size_kb": path.stat().st_size / 1024, "ops": sum(op_counts(path).values()),
            "median_ms": lat["median_ms"], "p90_ms": lat["p90_ms"], "hop_median_ms": lat.get("hop_median_ms")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "export_fixes.json"))
    args = p.parse_args(argv)

    import keras

    from kws_kd.atomic import atomic_write_text
    from kws_kd.features import dynamic_range_safe, front_end_scopes
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student
    from kws_kd.tflite.convert import Job, export_saved_model, run_jobs
    from kws_kd.tflite.sidecar import build_sidecar, write_sidecar, sidecar_path
    from kws_kd.tflite.streaming import convert_streaming

    rng = np.random.default_rng(0)
    rows, start = [], time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kws-kd-fixes-") as tmp:
        tmp = Path(tmp)
        # 1. front end forms, TC-ResNet 8 s
        keras.utils.set_random_seed(0)
        tc = strip(build_student("tc_resnet", 12, 8 * SR, for_export=True))
        rep8 = rng.normal(0, 0.1, (16, 8 * SR)).astype(np.float32)
        jobs = []
        for safe in (True, False):
            sm = tmp / f"tc_sm_{safe}"
            with dynamic_range_safe(tc, safe):
                export_saved_model(tc, sm, "tc_resnet")
            form = "mul+sum mel (old)" if safe else "matmul mel (new)"
            jobs += [Job(sm, m, tmp / f"tc_{m}_{safe}.tflite", f"tc_resnet 8 s {m}, {form}") for m in ("float32", "int8")]
        run_jobs(jobs, representative=rep8, float_scopes=front_end_scopes(tc))
        for job in jobs:
            rows.append(_row(job.label, job.out, _latency(job.out, args.runs)))
            print(rows[-1], flush=True)

        # 2. LSTM-P 8 s: unrolled vs streaming int8
        keras.utils.set_random_seed(0)
        lp = strip(build_student("lstm_p", 12, 8 * SR, for_export=True))
        unrolled = tmp / "lstm_p_unrolled_int8.tflite"
        t = time.monotonic()
        sm = tmp / "lp_sm"
        export_saved_model(lp, sm, "lstm_p")
        run_jobs([Job(sm, "int8", unrolled, "lstm_p")], representative=rep8[:8], float_scopes=front_end_scopes(lp))
        unrolled_s = time.monotonic() - t
        rows.append({**_row("lstm_p 8 s int8, unrolled whole clip", unrolled, _latency(unrolled, max(5, args.runs // 3))),
                     "convert_s": unrolled_s})
        print(rows[-1], flush=True)
        streaming = tmp / "lstm_p_streaming_int8.tflite"
        t = time.monotonic()
        layout = convert_streaming(lp, {"int8": streaming}, calibration_audio=rep8[:8], label="lstm_p", log=print)
        streaming_s = time.monotonic() - t
        write_sidecar(sidecar_path(streaming), build_sidecar(
            streaming, model="lstm_p", quantize="int8", labels=[str(i) for i in range(12)], multi_label=False,
            sample_rate=SR, front_end={}, source_run=None, test_metrics=None, streaming=layout.to_dict(),
            clip_samples=8 * SR))
        rows.append({**_row("lstm_p 8 s int8, streaming (399 hops)", streaming, _latency(streaming, max(5, args.runs // 3))),
                     "convert_s": streaming_s})
        print(rows[-1], flush=True)

        # 3. Att-RNN 1 s int8 size
        keras.utils.set_random_seed(0)
        ar = strip(build_student("att_rnn", 12, SR, for_export=True))
        sm = tmp / "ar_sm"
        export_saved_model(ar, sm, "att_rnn")
        ar_file = tmp / "att_rnn_int8.tflite"
        run_jobs([Job(sm, "int8", ar_file, "att_rnn")], representative=rng.normal(0, 0.1, (16, SR)).astype(np.float32),
                 float_scopes=front_end_scopes(ar))
        rows.append(_row("att_rnn 1 s int8 (was 1,430 KB)", ar_file, _latency(ar_file, args.runs)))
        print(rows[-1], flush=True)

    lines = ["| file | size (KB) | ops | median ms | p90 ms | per hop ms |", "|---|---|---|---|---|---|"]
    for r in rows:
        hop = "-" if r["hop_median_ms"] is None else f"{r['hop_median_ms']:.3f}"
        lines.append(f"| {r['file']} | {r['size_kb']:.0f} | {r['ops']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {hop} |")
    print("\n".join(lines))
    import os

    result = {"meta": {"runs": args.runs, "threads": 1, "xnnpack": True, "load_average": list(os.getloadavg()),
                       "wall_s": time.monotonic() - start, "note": "random weights; one run, same machine"},
              "rows": rows, "markdown": lines}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
