"""`kws-kd bench host|arm|adb`: latency and cost of .tflite files (host LiteRT, ARM under qemu, phone over adb)."""

from __future__ import annotations

import argparse
import json

from kws_kd.cli.common import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "bench", help="latency and size benchmarks (host LiteRT, ARM under qemu, phone over adb)")
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)

    host = add_command(sub, "host", help="LiteRT latency on this CPU (median and p90 after warm-up)")
    host.add_argument("models", nargs="+", help=".tflite files")
    host.add_argument("--threads", type=int, nargs="+", default=[1], help="thread counts to time")
    host.add_argument("--runs", type=int, default=50, help="timed runs (>= 50 for the report)")
    host.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs")
    host.add_argument("--no-xnnpack", action="store_true", help="builtin kernels only")
    host.add_argument("--json", default=None, help="also write the rows to this JSON file")
    host.set_defaults(func=run_host)

    arm = add_command(sub, "arm", help="run on emulated aarch64 (qemu-user) with XNNPACK; checks output vs host")
    arm.add_argument("models", nargs="+", help=".tflite files")
    arm.add_argument("--json", default=None, help="also write the rows to this JSON file")
    arm.add_argument("--instructions", action="store_true",
                     help="count aarch64 instructions per inference from qemu's block logs (seconds to minutes per file)")
    arm.set_defaults(func=run_arm)

    adb = add_command(sub, "adb", help="LiteRT benchmark_model on an Android phone over adb")
    adb.add_argument("model", help=".tflite file")
    adb.add_argument("--benchmark-binary", required=True, help="LiteRT benchmark_model built for the phone")
    adb.add_argument("--serial", default=None, help="adb serial when several devices are attached")
    adb.add_argument("--threads", type=int, default=1)
    adb.add_argument("--no-xnnpack", action="store_true", help="--use_xnnpack=false")
    adb.add_argument("--gpu", action="store_true", help="--use_gpu=true")
    adb.add_argument("--taskset", default=None, help="CPU mask for taskset, e.g. f0 (big cores)")
    adb.add_argument("--runs", type=int, default=50)
    adb.add_argument("--warmup", type=int, default=10)
    adb.add_argument("--adb", default="adb", help="adb executable")
    adb.add_argument("--json", default=None, help="also write the result to this JSON file")
    adb.add_argument("--flags", default="", help="more benchmark_model flags, e.g. '--enable_op_profiling=true'")
    adb.set_defaults(func=run_adb)


def _write(path: str | None, rows) -> None:
    if path:
        from kws_kd.atomic import atomic_write_text

        atomic_write_text(path, json.dumps(rows, indent=2) + "\n")


def run_host(args: argparse.Namespace) -> int:
    from kws_kd.bench.host import host_latency

    rows = []
    print(f"{'model':40s} {'threads':>7s} {'median ms':>10s} {'p90 ms':>8s} {'KiB':>8s}")
    for model in args.models:
        for t in args.threads:
            r = host_latency(model, threads=t, runs=args.runs, warmup=args.warmup, xnnpack=not args.no_xnnpack)
            rows.append(r)
            print(f"{r['model']:40s} {t:7d} {r['median_ms']:10.3f} {r['p90_ms']:8.3f} {r['size_bytes'] / 1024:8.1f}")
    _write(args.json, rows)
    return 0


def run_arm(args: argparse.Namespace) -> int:
    from kws_kd.bench.arm import ArmUnavailable
    from kws_kd.bench.arm import run_arm as arm

    rows = []
    for model in args.models:
        try:
            r = arm(model, instructions=args.instructions)
        except ArmUnavailable as exc:
            print(f"skipped: {exc}")
            return 0
        rows.append(r)
        print(
            f"{r['model']}: runs on aarch64 LiteRT, XNNPACK {'on' if r['xnnpack'] else 'OFF'}, "
            f"max |diff| vs host {r['max_abs_diff_vs_host']:.3g}; instructions/inference "
            f"{r['instructions_note'] if r['instructions_per_inference'] is None else format(r['instructions_per_inference'], ',')}"
        )
    _write(args.json, rows)
    return 0


def run_adb(args: argparse.Namespace) -> int:
    from kws_kd.bench.adb import run_adb_benchmark

    import shlex

    extra = shlex.split(args.flags)
    r = run_adb_benchmark(
        args.benchmark_binary, args.model, serial=args.serial, threads=args.threads, xnnpack=not args.no_xnnpack,
        gpu=args.gpu, taskset=args.taskset, num_runs=args.runs, warmup_runs=args.warmup, extra_flags=extra,
        adb=args.adb,
    )  # fmt: skip
    print(f"{r['model']} on {r['device']}: avg {r['avg_us'] / 1000:.3f} ms ({r['threads']} thread(s))")
    _write(args.json, r)
    return 0
