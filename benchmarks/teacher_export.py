"""Throughput and peak memory of `kws-kd teacher export`.

Shows that the exporter's memory grows with the batch size, not with the number
of clips, nor with the number of layers (each layer's attention map is folded
into the running rollout as soon as it is produced, instead of transformers
collecting all layers' maps). Every configuration runs in its own child process
so its memory is measured alone: RSS is sampled every 5 ms while the export
runs; "before" is the RSS with the model built and nothing exported yet.
Workers run with MALLOC_MMAP_THRESHOLD_=131072 (see MMAP_THRESHOLD) unless
--glibc-default-malloc is given.

    python benchmarks/teacher_export.py [--quick] [--out benchmarks/results/teacher_export.json]

Models are randomly initialised (`build_teacher(name)`); speed and memory do not
depend on the weights. Clips are 8 s of noise. The last column is what
transformers' `output_attentions=True` would hold at once for the batch (every
layer's float32 [B, heads, T, T] maps): the memory this exporter avoids.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CONFIGS = {
    # model: (batch sizes, clip counts)
    "small-cpu": ((4, 16), (32, 64)),
    "xlsr-300m-shape": ((1, 4), (4, 8)),
}
QUICK = {"small-cpu": ((2, 4), (8, 16)), "xlsr-300m-shape": ((1, 2), (2, 4))}
SECONDS = 8.0
# A fixed glibc mmap threshold (128 KiB) returns big freed buffers to the OS at once; with glibc's
# default dynamic threshold, peak RSS creeps up by tens of MB over many batches (heap fragmentation)
# and would blur the point measured here: what the exporter itself holds.
MMAP_THRESHOLD = "131072"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class PeakRss:
    """Samples this process's RSS in a thread: the peak while the block runs."""

    def __enter__(self):
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def make_dataset(folder: Path, num_clips: int) -> None:
    from kws_kd.audio import write_wav
    from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest

    rng = np.random.default_rng(0)
    clips = []
    for i in range(num_clips):
        path = folder / f"clip{i:04d}.wav"
        write_wav(path, (0.2 * rng.standard_normal(int(SECONDS * 16000))).clip(-1, 1).astype(np.float32))
        clips.append(ClipRecord(f"clip{i:04d}", "test", ("a" if i % 2 else "b",), str(path)))
    write_manifest(Manifest(str(folder), ["a", "b"], clips, clip_seconds=SECONDS), folder)


def _batches(manifest, batch: int):
    from kws_kd.audio import pad_or_crop, read_audio

    n = int(SECONDS * 16000)
    for first in range(0, len(manifest.clips), batch):
        yield np.stack([pad_or_crop(read_audio(c.path), n) for c in manifest.clips[first : first + batch]])


def run_method(method: str, model, manifest, batch: int, tmp: Path) -> float:
    """Seconds spent exporting/running `manifest` with one method."""
    import torch

    from export.export_store import _device_matmul, export_with_model
    from kws_kd.rollout import RolloutAccumulator

    if method == "stream":
        return export_with_model(model, manifest, tmp / "store", teacher_hash="bench", batch_size=batch,
                                 progress=False).seconds
    start = time.perf_counter()
    layers = model.wav2vec2.config.num_hidden_layers
    with torch.inference_mode():
        for x in _batches(manifest, batch):
            if method == "forward":
                model(torch.from_numpy(x))
            elif method == "output_attentions":
                out = model(torch.from_numpy(x), output_attentions=True)  # all layers' maps held at once
                acc = RolloutAccumulator(layers, matmul=_device_matmul("cpu"))  # the exporter's fold, same cost
                for a in out.attentions:
                    acc.update(a.float().numpy())
                acc.result()
            else:
                raise ValueError(method)
    return time.perf_counter() - start


def worker(model_name: str, batch: int, clips: int, data: Path, threads: int, method: str = "stream") -> dict:
    import torch

    from export.teacher_model import build_teacher
    from kws_kd.data.manifest import Manifest, read_manifest

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    full = read_manifest(data)
    manifest = Manifest(full.root, full.label_names, full.clips[:clips], clip_seconds=full.clip_seconds)
    model = build_teacher(model_name, full.label_names).eval()
    cfg = model.wav2vec2.config
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp, PeakRss() as peak:
        seconds = run_method(method, model, manifest, batch, Path(tmp))
    frames = model.num_frames(int(SECONDS * 16000))
    all_maps_mb = cfg.num_hidden_layers * batch * cfg.num_attention_heads * frames * frames * 4 / 2**20
    return {
        "model": model_name,
        "method": method,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "layers": cfg.num_hidden_layers,
        "heads": cfg.num_attention_heads,
        "clip_seconds": SECONDS,
        "frames": frames,
        "batch_size": batch,
        "clips": clips,
        "seconds": round(seconds, 2),
        "clips_per_s": round(clips / seconds, 3),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak.peak, 1),
        "peak_minus_before_mb": round(peak.peak - before, 1),
        "all_layer_maps_mb": round(all_maps_mb, 1),
        "threads": threads,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    ap.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--batches", type=int, nargs="+", help="override the batch sizes of every model")
    ap.add_argument("--clips", type=int, nargs="+", help="override the clip counts of every model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--glibc-default-malloc", action="store_true",
                    help="leave glibc's dynamic mmap threshold on (peak RSS then creeps up slowly with the number "
                         "of batches through heap fragmentation, though nothing is retained)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teacher_export.json"))
    ap.add_argument("--compare", action="store_true",
                    help="also run, at the smallest clip count, 'output_attentions' (transformers returns every "
                         "layer's maps, then rollout) and 'forward' (no attention at all: the floor)")
    ap.add_argument("--worker", nargs=5, metavar=("MODEL", "BATCH", "CLIPS", "DATA", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        model, batch, clips, data, method = args.worker
        print(json.dumps(worker(model, int(batch), int(clips), Path(data), args.threads, method)))
        return 0

    configs = dict(QUICK if args.quick else CONFIGS)
    for m in configs:
        batches, counts = configs[m]
        configs[m] = (tuple(args.batches or batches), tuple(args.clips or counts))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        make_dataset(data, max(max(c) for _, c in (configs[m] for m in args.models)))
        for model in args.models:
            batches, counts = configs[model]
            runs = [(b, c, "stream") for b in batches for c in counts]
            if args.compare:
                runs += [(b, min(counts), m) for b in batches for m in ("output_attentions", "forward")]
            for batch, clips, method in runs:
                if True:
                    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--worker", model, str(batch),
                           str(clips), str(data), method]
                    env = dict(os.environ)
                    if not args.glibc_default_malloc:
                        env.setdefault("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)
                    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
                    if proc.returncode != 0:
                        print(proc.stderr[-2000:], file=sys.stderr)
                        return 1
                    row = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(f"  {model} {method} batch {batch} clips {clips}: {row['clips_per_s']} clips/s, "
                          f"peak {row['peak_rss_mb']} MB", flush=True)

    head = ("model", "method", "batch", "clips", "clips/s", "RSS before MB", "peak RSS MB", "peak-before MB", "all-layer maps MB")
    print()
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for r in rows:
        print(" | ".join(str(x) for x in (r["model"], r["method"], r["batch_size"], r["clips"], r["clips_per_s"], r["rss_before_mb"],
                                          r["peak_rss_mb"], r["peak_minus_before_mb"], r["all_layer_maps_mb"])))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "teacher_export", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "cpu_count": os.cpu_count(),
                               "malloc_mmap_threshold": None if args.glibc_default_malloc else
                               os.environ.get("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD),
                               "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
