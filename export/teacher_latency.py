"""Time the PyTorch teacher on the CPU, to compare it with the students' LiteRT latency.

The ratio teacher/student is only honest when both run on the same CPU, with the
same thread count, on clips of the same length; the callers (`kws-kd demo`,
`benchmarks/host_latency.py`) run this in a child process so that torch never
enters the TensorFlow process.

    python -m export.teacher_latency --teacher small-cpu --seconds 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from export.teacher_configs import NAMED_CONFIGS
from export.teacher_model import build_teacher, load_teacher
from kws_kd.audio import SAMPLE_RATE



def teacher_latency(teacher: str, seconds: float, *, threads: int = 1, runs: int = 10, warmup: int = 2,
                    seed: int = 0) -> dict:
    """Median and p90 wall time (ms) of one forward pass (batch 1, eval mode, no attention maps)."""
    torch.set_num_threads(threads)
    if teacher in NAMED_CONFIGS:
        model = build_teacher(teacher, labels=[str(i) for i in range(12)])
    else:
        model = load_teacher(teacher)
    model.eval()
    samples = int(round(seconds * SAMPLE_RATE))
    audio = torch.from_numpy(np.random.default_rng(seed).uniform(-0.5, 0.5, (1, samples)).astype(np.float32))
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(audio)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    t = np.asarray(times)
    return {
        "teacher": teacher if teacher in NAMED_CONFIGS else str(Path(teacher).name),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "seconds": seconds,
        "threads": threads,
        "runs": runs,
        "median_ms": float(np.median(t)),
        "p90_ms": float(np.percentile(t, 90)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--teacher", required=True, help=f"teacher folder or a named config ({', '.join(NAMED_CONFIGS)})")
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--runs", type=int, default=10, help="timed forward passes")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forward passes first")
    args = parser.parse_args(argv)
    result = teacher_latency(args.teacher, args.seconds, threads=args.threads, runs=args.runs, warmup=args.warmup)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
