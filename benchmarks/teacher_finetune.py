"""Cost of one teacher fine-tuning step (AdamW, batch 16) per clip length and thread count.

Why: on a CPU the teacher's training budget is measured in steps, and the clip
length mix (`--clip-seconds/--clip-weights`) and `--threads` decide how many
steps fit. Reports wall seconds and process CPU seconds per step (CPU seconds are
what a shared machine charges; wall time depends on the other load), so the
thread-count comparison stays meaningful when the machine is busy.

    python benchmarks/teacher_finetune.py [--configs small-cpu] [--seconds 2 4 8] [--threads 1 2] [--steps 3]
        [--out benchmarks/results/teacher_finetune.json]

Random audio and random init: the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(config: str, seconds: float, threads: int, steps: int, batch: int) -> dict:
    import torch

    from export.teacher_model import build_teacher

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_teacher(config, [str(i) for i in range(12)]).train()
    model.spec_augment.p = 0.75
    model.wav2vec2.feature_extractor._requires_grad = False
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    x = torch.randn(batch, int(seconds * 16000)) * 0.1
    y = torch.randint(0, 12, (batch,))
    walls, cpus = [], []
    for i in range(steps + 1):  # the first step warms up allocators and is not counted
        w, c = time.perf_counter(), time.process_time()
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    walls.sort()
    cpus.sort()
    return {
        "config": config, "seconds": seconds, "threads": threads, "batch": batch, "steps": steps,
        "params": sum(p.numel() for p in model.parameters()),
        "wall_s_per_step_median": walls[len(walls) // 2], "cpu_s_per_step_median": cpus[len(cpus) // 2],
        "loadavg_1min": os.getloadavg()[0],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["small-cpu"])
    p.add_argument("--seconds", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teacher_finetune.json"))
    a = p.parse_args()
    rows = [measure(c, s, t, a.steps, a.batch) for c in a.configs for s in a.seconds for t in a.threads]
    print(f"{'config':<16}{'params':>9}{'clip s':>8}{'threads':>8}{'wall s/step':>13}{'cpu s/step':>12}{'load':>6}")
    for r in rows:
        print(f"{r['config']:<16}{r['params']:>9}{r['seconds']:>8g}{r['threads']:>8}"
              f"{r['wall_s_per_step_median']:>13.3f}{r['cpu_s_per_step_median']:>12.3f}{r['loadavg_1min']:>6.1f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"rows": rows, "note": "shared 2-core machine; see loadavg"}, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
