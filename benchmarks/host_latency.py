"""Host latency table: every student x mode x clip length on this CPU with LiteRT, vs the PyTorch teacher.

Thin wrapper over kws_kd.bench / kws_kd.tflite: converts the paper-size
students (random weights: latency does not depend on the values; int8 is
calibrated on noise) with the same code as `kws-kd export`, times them with
`kws_kd.bench.host.host_latency` (XNNPACK on, median and p90 of >= 50 runs
after warm-up), counts MACs with the students' analytical counter, measures
the core's practical peak MAC rate (single-thread float32 SGEMM in numpy), and
times the teachers with `python -m export.teacher_latency` in a child process
(kws_kd never imports torch). Writes docs/latency.json, docs/latency.csv and
the markdown table docs/latency.md.

    python benchmarks/host_latency.py --seconds 1 8 --modes float32 int8 int8-streaming --threads 1 4

A mode ending in `-streaming` is the `kws-kd export --streaming` file (one
20 ms hop per call, state in and out), timed per clip as every hop of the
clip in turn; students that cannot stream get no such row.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

STUDENTS = ("lstm_p", "tc_resnet", "crnn", "att_rnn", "mhatt_rnn")
SR = 16000
STREAMING = "-streaming"


def peak_sgemm_macs_per_s(n: int = 1024, repeats: int = 5) -> float:
    """Single-thread float32 SGEMM rate (MAC/s) in a child with BLAS pinned to 1 thread."""
    code = (
        "import numpy as np, time\n"
        f"n={n}; a=np.random.rand(n,n).astype(np.float32); b=np.random.rand(n,n).astype(np.float32)\n"
        "a@b\nts=[]\n"
        f"for _ in range({repeats}):\n t=time.perf_counter(); a@b; ts.append(time.perf_counter()-t)\n"
        "print(n**3/min(ts))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def convert_students(names, seconds, modes, work: Path, log) -> dict:
    """{(student, seconds, mode): path or error string}; existing files are reused."""
    import keras

    from kws_kd.errors import KwsKdError
    from kws_kd.features import dynamic_range_safe, front_end_scopes
    from kws_kd.students.attention import strip
    from kws_kd.students.macs import model_macs
    from kws_kd.students.registry import build_student
    from kws_kd.tflite.convert import Job, export_saved_model, run_jobs

    streaming_modes = [m for m in modes if m.endswith(STREAMING)]
    modes = [m for m in modes if not m.endswith(STREAMING)]
    files, macs, params = {}, {}, {}
    for name in names:
        jobs = []
        for sec in seconds:
            samples = int(round(sec * SR))
            keras.utils.set_random_seed(0)
            model = strip(build_student(name, 12, samples, for_export=True))
            macs[(name, sec)] = model_macs(model)
            params[name] = int(model.count_params())
            scopes = front_end_scopes(model)  # int8 keeps the MFCC front end float, as kws-kd export does
            for m in streaming_modes:
                files[(name, sec, m)] = _streaming_file(model, name, sec, m, work, log)
            todo = {m: work / f"{name}_{sec:g}s_{m}.tflite" for m in modes}
            missing = {m: p for m, p in todo.items() if not p.exists()}
            files.update({(name, sec, m): p for m, p in todo.items()})
            for m, p in missing.items():
                # dynamic-range files need the MUL+SUM mel form (kws_kd.features.dynamic_range_safe)
                sm = work / f"{name}_{sec:g}s_savedmodel{'_dynamic' if m == 'dynamic' else ''}"
                if not sm.exists():
                    t = time.time()
                    tmp_sm = sm.with_name(sm.name + ".partial")
                    shutil.rmtree(tmp_sm, ignore_errors=True)
                    with dynamic_range_safe(model, m == "dynamic"):
                        export_saved_model(model, tmp_sm, name)
                    tmp_sm.rename(sm)
                    log(f"  {name} {sec:g}s SavedModel in {time.time() - t:.0f}s")
                jobs.append(Job(sm, m, p, f"{name} {sec:g}s"))
        if not jobs:
            continue
        rng = np.random.default_rng(0)
        for sec in sorted({float(j.label.split()[-1][:-1]) for j in jobs}):
            sec_jobs = [j for j in jobs if j.label.endswith(f" {sec:g}s")]
            rep = (rng.normal(0, 0.1, (32, int(round(sec * SR))))).astype(np.float32)
            t = time.time()
            try:
                run_jobs(sec_jobs, representative=rep, float_scopes=scopes)
                log(f"  {name} {sec:g}s converted ({', '.join(j.mode for j in sec_jobs)}) in {time.time() - t:.0f}s")
            except KwsKdError as exc:
                log(f"  {name} {sec:g}s FAILED: {exc}")
                for j in sec_jobs:
                    files[(name, sec, j.mode)] = str(exc)
    return {"files": files, "macs": macs, "params": params}


def teacher_latency(teacher: str, seconds: float, threads: int, runs: int, log) -> dict | None:
    cmd = [sys.executable, "-m", "export.teacher_latency", "--teacher", teacher, "--seconds", str(seconds),
           "--threads", str(threads), "--runs", str(runs), "--warmup", "1"]  # fmt: skip
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        log(f"  teacher {teacher} {seconds:g}s failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"  teacher {teacher} {seconds:g}s {threads}t: {r['median_ms']:.1f} ms median ({time.time() - t:.0f}s)")
    return r


def write_outputs(rows, teachers, meta, out_dir: Path) -> None:
    from kws_kd.atomic import atomic_write_text

    atomic_write_text(out_dir / "latency.json", json.dumps({"meta": meta, "students": rows, "teachers": teachers}, indent=2) + "\n")
    fields = ["student", "seconds", "mode", "threads", "median_ms", "p90_ms", "min_ms", "runs", "size_kib", "macs",
              "gmacs_per_s", "peak_fraction", "ratio_xlsr", "ratio_small_cpu", "hop_median_ms", "error"]  # fmt: skip
    sio = io.StringIO()
    w = csv.DictWriter(sio, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(out_dir / "latency.csv", sio.getvalue())


def render_markdown(data: dict) -> str:
    """The docs/latency.md table from latency.json (one row per student x length x mode)."""
    meta, rows, teachers = data["meta"], data["students"], data["teachers"]
    by = {}
    for r in rows:
        by.setdefault((r["student"], r["seconds"], r["mode"]), {})[r["threads"]] = r
    lines = [
        "| student | clip | mode | size KiB | MMACs | 1 thread median / p90 ms | 4 threads median / p90 ms "
        "| GMAC/s (1 t) | % of peak | XLSR-300M-shape / student | small-CPU teacher / student |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, sec, mode), th in by.items():
        one, four = th.get(1, {}), th.get(4, {})
        if "error" in one:
            lines.append(f"| {name} | {sec:g} s | {mode} | conversion failed: {one['error']} |||||||||")
            continue

        def lat(r):
            return f"{r['median_ms']:.2f} / {r['p90_ms']:.2f}" if "median_ms" in r else "-"

        def num(v, fmt):
            return format(v, fmt) if isinstance(v, (int, float)) else "-"

        if one.get("hop_median_ms") is not None:
            mode = f"{mode} ({one['hop_median_ms']:.3f} ms/hop)"
        lines.append(
            f"| {name} | {sec:g} s | {mode} | {num(one.get('size_kib'), '.1f')} | {one['macs'] / 1e6:.1f} | {lat(one)} "
            f"| {lat(four)} | {num(one.get('gmacs_per_s'), '.2f')} | {num(100 * one.get('peak_fraction', float('nan')), '.1f')} "
            f"| {num(one.get('ratio_xlsr'), ',.0f')}x | {num(one.get('ratio_small_cpu'), ',.1f')}x |"
        )
    tlines = ["| teacher | params | clip | threads | runs | median ms | p90 ms |", "|---|---|---|---|---|---|---|"]
    for t in teachers:
        tlines.append(
            f"| {t['teacher']} | {t['parameters'] / 1e6:.1f} M | {t['seconds']:g} s | {t['threads']} | {t['runs']} "
            f"| {t['median_ms']:.1f} | {t['p90_ms']:.1f} |"
        )
    return "\n".join(
        [
            "## Table",
            "",
            f"Measured {meta['date']} on {meta['cpu_count']} cores ({meta['machine']}); {meta['note']}"
            + (f"; load average {meta['load_average_at_start'][0]:.1f} at start, "
               f"{meta['load_average_at_end'][0]:.1f} at end. " if "load_average_at_end" in meta else ". ")
            +
            f"LiteRT (ai-edge-litert) with XNNPACK, {meta['runs']} timed runs after {meta['warmup']} warm-up runs. "
            f"Peak = single-thread float32 SGEMM in numpy: {meta['peak_sgemm_gmacs_per_s_1thread']:.1f} GMAC/s.",
            "",
            *lines,
            "",
            "Teachers (PyTorch, eval mode, batch 1, same random clips, 1 thread):",
            "",
            *tlines,
            "",
        ]
    )


def _streaming_file(model, name: str, sec: float, mode: str, work: Path, log):
    """Path of the streaming export of `model` in `mode` ('int8-streaming'), None if it cannot stream,
    or the error text if conversion failed."""
    from kws_kd.errors import KwsKdError
    from kws_kd.tflite.sidecar import build_sidecar, sidecar_path, write_sidecar
    from kws_kd.tflite.streaming import check_streamable, convert_streaming

    try:
        check_streamable(name)
    except KwsKdError:
        return None
    path = work / f"{name}_{sec:g}s_{mode}.tflite"
    if path.exists() and sidecar_path(path).exists():
        return path
    quant = mode[: -len(STREAMING)]
    samples = int(round(sec * SR))
    rep = np.random.default_rng(0).normal(0, 0.1, (8, samples)).astype(np.float32)
    t = time.time()
    try:
        layout = convert_streaming(model, {quant: path}, calibration_audio=rep, label=f"{name} {sec:g}s", log=log)
    except KwsKdError as exc:
        log(f"  {name} {sec:g}s {mode} FAILED: {exc}")
        return str(exc)
    write_sidecar(sidecar_path(path), build_sidecar(
        path, model=name, quantize=quant, labels=[str(i) for i in range(12)], multi_label=False, sample_rate=SR,
        front_end={}, source_run=None, test_metrics=None, streaming=layout.to_dict(), clip_samples=samples))
    log(f"  {name} {sec:g}s {mode} converted in {time.time() - t:.0f}s")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", nargs="+", default=list(STUDENTS))
    p.add_argument("--seconds", nargs="+", type=float, default=[1.0, 8.0])
    p.add_argument("--modes", nargs="+", default=["float32", "int8"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 4])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--teachers", nargs="*", default=["small-cpu", "xlsr-300m-shape"])
    p.add_argument("--teacher-runs", type=int, default=3)
    p.add_argument("--work", default="/tmp/kws-kd-bench", help="where .tflite files are kept (reused)")
    p.add_argument("--out", default=str(REPO / "docs"), help="folder for latency.json/.csv")
    p.add_argument("--markdown", action="store_true", help="only print the markdown table of OUT/latency.json")
    p.add_argument("--note", default="2-core machine; 4 threads are oversubscribed",
                   help="how the machine was used during the run, printed above the table")
    p.add_argument("--peak-gmacs", type=float, default=None,
                   help="with --markdown: reference peak (GMAC/s) for the %% of peak column, e.g. the best "
                        "SGEMM rate seen on a quieter machine")  # fmt: skip
    args = p.parse_args(argv)
    work, out_dir = Path(args.work), Path(args.out)
    if args.markdown:
        data = json.loads((out_dir / "latency.json").read_text())
        if args.peak_gmacs:
            data["meta"]["peak_sgemm_gmacs_per_s_1thread_this_run"] = data["meta"]["peak_sgemm_gmacs_per_s_1thread"]
            data["meta"]["peak_sgemm_gmacs_per_s_1thread"] = args.peak_gmacs
            for r in data["students"]:
                if "gmacs_per_s" in r:
                    r["peak_fraction"] = r["gmacs_per_s"] / args.peak_gmacs
        print(render_markdown(data))
        return 0
    work.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    from kws_kd.bench.host import host_latency

    log("peak MAC rate (1-thread float32 SGEMM) ...")
    peak = peak_sgemm_macs_per_s()
    log(f"  {peak / 1e9:.1f} GMAC/s")
    cache = work / "teachers.json"
    teachers = json.loads(cache.read_text()) if cache.exists() else []
    for teacher in args.teachers:
        for sec in args.seconds:
            if any(t["teacher"] == teacher and t["seconds"] == sec for t in teachers):
                continue
            r = teacher_latency(teacher, sec, 1, args.teacher_runs, log)
            if r:
                teachers.append(r)
                cache.write_text(json.dumps(teachers))
    meta = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "note": args.note,
        "load_average_at_start": list(os.getloadavg()),
        "peak_sgemm_gmacs_per_s_1thread": peak / 1e9,
        "runs": args.runs,
        "warmup": args.warmup,
        "xnnpack": True,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    rows = []
    # All students at the first length before any at the next: 8 s conversions are slow.
    for sec in args.seconds:
        for name in args.students:
            log(f"{name} {sec:g}s: converting ...")
            conv = convert_students([name], [sec], args.modes, work, log)
            for mode in args.modes:
                path = conv["files"][(name, sec, mode)]
                if path is None:
                    continue  # a -streaming mode for a student that cannot stream
                for th in args.threads:
                    row = {"student": name, "seconds": sec, "mode": mode, "threads": th,
                           "macs": conv["macs"][(name, sec)], "params": conv["params"][name]}  # fmt: skip
                    if isinstance(path, str):
                        row["error"] = path
                        rows.append(row)
                        continue
                    r = host_latency(path, threads=th, runs=args.runs, warmup=args.warmup)
                    row.update({k: r[k] for k in ("median_ms", "p90_ms", "min_ms", "runs", "hop_median_ms") if k in r})
                    row["size_kib"] = round(r["size_bytes"] / 1024, 1)
                    row["gmacs_per_s"] = row["macs"] / (r["median_ms"] / 1e3) / 1e9
                    row["peak_fraction"] = row["gmacs_per_s"] * 1e9 / peak
                    for t in teachers:
                        if t["seconds"] == sec and t["threads"] == 1:
                            key = "ratio_xlsr" if t["teacher"] == "xlsr-300m-shape" else "ratio_small_cpu"
                            row[key] = t["median_ms"] / r["median_ms"]
                    rows.append(row)
                    log(f"  {name} {sec:g}s {mode:8s} {th}t: median {r['median_ms']:.3f} ms p90 {r['p90_ms']:.3f} "
                        f"ms, {row['size_kib']} KiB, {row['gmacs_per_s']:.2f} GMAC/s")  # fmt: skip
            meta["load_average_at_end"] = list(os.getloadavg())
            write_outputs(rows, teachers, meta, out_dir)
    log(f"wrote {out_dir / 'latency.json'} and latency.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
