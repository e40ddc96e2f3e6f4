"""Clips per second of the Noisy Speech Commands data path, at 2 s and 8 s.

Measures, for each clip length D:

* ``build``: `build_noisy` writing WAVs (one-off cost of `kws-kd data noisy`);
* ``tf-decode``: `make_dataset` over the materialised folder (WAV read + decode
  in a parallel tf.data map), the default training path;
* ``in-memory``: `make_dataset(in_memory=True)` (split held as int16 in RAM);
* ``fresh-mix``: `make_dataset(fresh_mix=noise)` (new noise crop and keyword
  position every epoch, all TF ops).

and compares each with what student training consumes: ~15 steps/s x batch 100
for a small LSTM at 1 s (FACTS.md, 2 cores), scaled by 1/D since the recurrent
students' cost grows with the number of frames. The goal is >= 10x.

Keyword clips come from the shared real subset when present, else a small
espeak-ng synth set. CPU here is shared with other jobs: figures are noisy.

    python benchmarks/data_throughput.py [--clips 1000] [--seconds 2 8] [--out benchmarks/results/data_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CLIPS_PER_S_AT_1S = 15 * 100  # FACTS.md: LSTM(64), batch 100, ~15 steps/s on 2 cores


def _source_manifest(tmp: Path, clips: int):
    from kws_kd.data.load import load_dataset
    from kws_kd.data.synth import build_synth

    from kws_kd.data.shared import find_shared_data

    shared = find_shared_data()
    if shared is not None:
        m, name = load_dataset(shared), "shared real subset"
    else:
        m, name = build_synth(tmp / "synth", per_word=max(4, clips // 35), progress=False), "espeak-ng synth"
    keep = [c for c in m.clips if c.split == "train"][:clips] + [c for c in m.clips if c.split != "train"][:20]
    return replace(m, clips=keep), name


def _time_pipeline(ds, epochs: int = 2) -> tuple[float, int]:
    for _ in ds.take(1):  # build the graph and fill the prefetch buffer outside the timing
        pass
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for b in ds:
            n += int(b["audio"].shape[0])
    return n / (time.perf_counter() - t0), n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1000, help="training clips per measurement")
    ap.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0], help="clip lengths D")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_throughput.json"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    from kws_kd.data.babble import babble_sources, build_babble
    from kws_kd.data.noisy import build_noisy
    from kws_kd.data.pipeline import make_dataset

    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-kd-bench-") as tmp_s:
        tmp = Path(tmp_s)
        manifest, source = _source_manifest(tmp, args.clips)
        srcs = babble_sources(manifest, words="all")
        build_babble(srcs, tmp / "babble", num_files=6, seconds=max(30.0, 2 * max(args.seconds)), progress=False)
        for d in args.seconds:
            t0 = time.perf_counter()
            noisy = build_noisy(manifest, tmp / "babble", d, tmp / f"noisy_{d:g}", seed=0, progress=False)
            build_rate = len(noisy.clips) / (time.perf_counter() - t0)
            need = TRAIN_CLIPS_PER_S_AT_1S / d
            variants = {
                "build (write WAVs)": None,
                "tf-decode": dict(),
                "in-memory": dict(in_memory=True),
                "fresh-mix": dict(fresh_mix=tmp / "babble"),
            }
            for name, kw in variants.items():
                if kw is None:
                    rate, n = build_rate, len(noisy.clips)
                else:
                    ds = make_dataset(noisy, "train", args.batch_size, shuffle=True, seed=0, **kw)
                    rate, n = _time_pipeline(ds)
                rows.append({"seconds": d, "path": name, "clips_per_s": round(rate, 1), "clips": n,
                             "train_consumes_per_s": round(need, 1), "ratio": round(rate / need, 2)})
                print(f"D={d:g}s {name:<20} {rate:9.1f} clips/s  ({rate / need:5.1f}x training's ~{need:.0f}/s)", flush=True)
            import shutil

            shutil.rmtree(tmp / f"noisy_{d:g}")

    print()
    print(f"{'D (s)':>6} {'path':<20} {'clips/s':>10} {'training needs':>15} {'ratio':>7}")
    for r in rows:
        print(f"{r['seconds']:>6g} {r['path']:<20} {r['clips_per_s']:>10.1f} {r['train_consumes_per_s']:>15.1f} {r['ratio']:>6.1f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": source, "batch_size": args.batch_size, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "tensorflow": tf.__version__, "machine": platform.machine(),
            "note": "CPU shared with other jobs; training need = 1500 clips/s at 1 s (FACTS.md) / D"}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
