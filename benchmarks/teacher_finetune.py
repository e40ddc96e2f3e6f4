"""Teacher fine-tuning cost, OLD vs NEW per lever, measured interleaved in one run.

Why: on a CPU the teacher's training budget is measured in steps, so every lever
that makes a step cheaper buys accuracy. Each setting lives in its own worker
process (thread settings, inter-op threads in particular, are per process), all
workers are built first, and then the parent asks them for ONE step each in
turn, round after round: a change in the machine's other load hits every setting
alike instead of whichever happened to run then. A step is what
`export/finetune.py` does: draw a fresh-mix batch (`MixSource.sample`, timed
separately as the data share), forward (optionally under bfloat16 autocast),
float32 cross-entropy, backward, gradient clip, AdamW.

Levers (OLD is always `base`: small-cpu, float32, 1 thread, 1 inter-op thread):
  precision   --precision bfloat16 (autocast of the forward pass)
  threads     --threads 2
  interop     --interop-threads 2
  encoder     --config small-cpu-fast (5-layer conv encoder, strides 10,4,2,2,2)
  attn-drop   --attention-dropout 0 (the dropout masks' bernoulli_ is 10-20 % of a step)
  combined    small-cpu-fast + bfloat16 (the curriculum recipe's setting)
  comb+ad0    combined + attention dropout 0 (optional: changes the regularisation)
  data        share of the step spent mixing (from every worker's own draws)

bfloat16 is only useful if the loss stays finite and close: every worker also
computes eval-mode logits and the loss of one fixed batch from the same seeded
init, and the table reports the largest logit difference and the loss difference
against float32 workers of the same config.

    python benchmarks/teacher_finetune.py [--seconds 4] [--batch 8] [--steps 5] [--levers ...]
    python benchmarks/teacher_finetune.py --recipe-costs     # combined setting at 1, 2, 4 and 8 s

Writes benchmarks/results/teacher_finetune.{json,csv} (or --out). Random init and
synthetic audio: the cost does not depend on the weights or on the words.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BASE = dict(config="small-cpu", precision="float32", threads=1, interop=1, attention_dropout=None)
LEVERS = {
    "precision": dict(precision="bfloat16"),
    "threads": dict(threads=2),
    "interop": dict(interop=2),
    "encoder": dict(config="small-cpu-fast"),
    "attn-drop": dict(attention_dropout=0.0),
    "combined": dict(config="small-cpu-fast", precision="bfloat16"),
    "comb+ad0": dict(config="small-cpu-fast", precision="bfloat16", attention_dropout=0.0),
}


def _worker(spec: dict, conn) -> None:
    """One setting: build everything, then answer 'step' requests until 'stop'."""
    import numpy as np
    import torch

    torch.set_num_interop_threads(spec["interop"])  # first thing: only possible before parallel work
    torch.set_num_threads(spec["threads"])
    from export.finetune_runtime import autocast
    from export.finetune_setup import set_attention_dropout
    from export.teacher_data import MixSource
    from export.teacher_model import build_teacher
    from kws_kd.data.manifest import ClipRecord, Manifest

    labels = [f"w{i}" for i in range(12)]
    torch.manual_seed(0)
    model = build_teacher(spec["config"], labels).train()
    if spec["attention_dropout"] is not None:
        set_attention_dropout(model, spec["attention_dropout"])
    model.spec_augment.p = 0.75
    model.wav2vec2.feature_extractor._requires_grad = False
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    # a fresh-mix source like the real one: 1 s keywords, 12 x 30 s noise clips
    rng0 = np.random.default_rng(0)
    recs = [ClipRecord(f"c{i}", "train", (labels[i % 12],), "") for i in range(96)]
    src = MixSource(recs, Manifest("/nowhere", labels, recs),
                    [(0.1 * rng0.standard_normal(30 * 16000)).astype(np.float32) for _ in range(12)], progress=False)
    src.keywords[:] = (0.3 * rng0.standard_normal(src.keywords.shape)).astype(np.float32)
    n = int(round(spec["seconds"] * 16000))
    batch = spec["batch"]

    # closeness check: eval-mode logits and loss of one fixed batch at the seeded init
    fixed = src.sample(np.random.default_rng(123), batch, n)
    model.eval()
    with torch.no_grad(), autocast(spec["precision"], "cpu"):
        lg = model(torch.from_numpy(fixed.audio)).logits
    lg = lg.float()
    check = {"logits": lg.tolist(), "loss": float(torch.nn.functional.cross_entropy(lg, torch.from_numpy(fixed.labels)))}
    model.train()
    params = sum(p.numel() for p in model.parameters())
    conn.send({"ready": True, "params": params, "check": check})

    step = 0
    while True:
        msg = conn.recv()
        if msg == "stop":
            break
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        b = src.sample(np.random.default_rng([7, step]), batch, n)
        data_s = time.perf_counter() - t_wall
        torch.manual_seed(step)
        x, y = torch.from_numpy(b.audio), torch.from_numpy(b.labels)
        with autocast(spec["precision"], "cpu"):
            logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        conn.send({"wall_s": time.perf_counter() - t_wall, "cpu_s": time.process_time() - t_cpu,
                   "data_s": data_s, "loss": float(loss.detach())})
        step += 1


def run(settings: dict[str, dict], seconds: float, batch: int, steps: int) -> dict[str, dict]:
    ctx = mp.get_context("spawn")
    workers = {}
    for name, spec in settings.items():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(dict(spec, seconds=seconds, batch=batch), child), daemon=True)
        p.start()
        workers[name] = (p, parent)
    info = {name: conn.recv() for name, (p, conn) in workers.items()}  # the workers build in parallel
    samples = {name: [] for name in settings}
    for r in range(steps + 1):  # round 0 warms up allocators and oneDNN kernels: not counted
        for name, (p, conn) in workers.items():
            conn.send("step")
            res = conn.recv()
            if r:
                samples[name].append(res)
        print(f"round {r}/{steps} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    for p, conn in workers.values():
        conn.send("stop")
        p.join(timeout=30)
    out = {}
    for name, spec in settings.items():
        s = samples[name]
        wall = statistics.median(x["wall_s"] for x in s)
        out[name] = dict(spec, seconds=seconds, batch=batch, steps=steps, params=info[name]["params"],
                         wall_s_per_step=wall, cpu_s_per_step=statistics.median(x["cpu_s"] for x in s),
                         data_s_per_step=statistics.median(x["data_s"] for x in s),
                         examples_per_s=batch / wall, losses=[x["loss"] for x in s],
                         finite=all(map(lambda x: x["loss"] == x["loss"] and abs(x["loss"]) < 1e9, s)),
                         check=info[name]["check"])
    return out


def _closeness(a: dict, b: dict) -> dict:
    """Largest eval-logit difference and loss difference of two workers' fixed-batch checks."""
    import numpy as np

    la, lb = np.asarray(a["check"]["logits"]), np.asarray(b["check"]["logits"])
    return {"max_logit_diff": float(np.abs(la - lb).max()), "logit_scale": float(np.abs(la).max()),
            "loss_diff": abs(a["check"]["loss"] - b["check"]["loss"]),
            "train_loss_mean_diff": abs(statistics.mean(a["losses"]) - statistics.mean(b["losses"]))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="timed steps per setting (after one warm-up step)")
    p.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    p.add_argument("--recipe-costs", action="store_true",
                   help="instead: the combined setting (and base) at 1, 2, 4, 8 s with the curriculum's batch sizes")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teacher_finetune"),
                   help="path stem: writes STEM.json and STEM.csv")
    a = p.parse_args()
    t0 = time.time()
    load0 = os.getloadavg()[0]
    rows = []
    if a.recipe_costs:
        for seconds, batch in ((1.0, 32), (2.0, 32), (4.0, 16), (8.0, 16)):
            res = run({"base": BASE, "combined": dict(BASE, **LEVERS["combined"])}, seconds, batch, a.steps)
            for name, r in res.items():
                rows.append(dict(r, lever="recipe", setting=name))
    else:
        settings = {"base": BASE} | {k: dict(BASE, **LEVERS[k]) for k in a.levers}
        res = run(settings, a.seconds, a.batch, a.steps)
        for name, r in res.items():
            rows.append(dict(r, lever=name, setting="OLD" if name == "base" else "NEW"))
    base_by_len = {r["seconds"]: r for r in rows if r["setting"] in ("OLD", "base")}
    # the float32 twin of a bfloat16 setting: same config, clip length and dropout, 1 thread
    fp32_by = {(r["config"], r["seconds"], r["attention_dropout"]): r for r in rows
               if r["precision"] == "float32" and r["threads"] == 1 and r["interop"] == 1}
    for r in rows:
        b = base_by_len[r["seconds"]]
        r["speedup"] = r["examples_per_s"] / b["examples_per_s"]
        r["data_share"] = r["data_s_per_step"] / r["wall_s_per_step"]
        twin = fp32_by.get((r["config"], r["seconds"], r["attention_dropout"]))
        if r["precision"] == "bfloat16" and twin is not None:
            r["vs_float32"] = _closeness(r, twin)

    hdr = (f"{'lever':<10}{'setting':<9}{'config':<16}{'prec':<6}{'thr':>4}{'iop':>4}{'adrop':>6}{'params':>9}"
           f"{'clip':>5}{'batch':>6}{'s/step':>8}{'cpu s':>7}{'ex/s':>7}{'x base':>7}{'data %':>7}")
    print(hdr)
    for r in rows:
        prec = "bf16" if r["precision"] == "bfloat16" else "fp32"
        adrop = "-" if r["attention_dropout"] is None else f"{r['attention_dropout']:g}"
        print(f"{r['lever']:<10}{r['setting']:<9}{r['config']:<16}{prec:<6}{r['threads']:>4}{r['interop']:>4}{adrop:>6}"
              f"{r['params']:>9}{r['seconds']:>5g}{r['batch']:>6}{r['wall_s_per_step']:>8.3f}{r['cpu_s_per_step']:>7.3f}"
              f"{r['examples_per_s']:>7.1f}{r['speedup']:>7.2f}{100 * r['data_share']:>7.2f}")
    for r in rows:
        if "vs_float32" in r:
            c = r["vs_float32"]
            print(f"bfloat16 vs float32 ({r['config']}, {r['seconds']:g} s): all losses finite={r['finite']}, "
                  f"max |logit diff| {c['max_logit_diff']:.4f} (logits up to {c['logit_scale']:.2f}), "
                  f"init loss diff {c['loss_diff']:.4f}, mean train loss diff over {r['steps']} steps "
                  f"{c['train_loss_mean_diff']:.4f}")
    meta = {"note": "shared 2-core machine; other jobs were running (see loadavg); workers interleaved step by step",
            "loadavg_1min_start": load0, "loadavg_1min_end": os.getloadavg()[0], "wall_s": round(time.time() - t0, 1),
            "cpu": _cpu_name(), "command": " ".join(["python", "benchmarks/teacher_finetune.py", *sys.argv[1:]])}
    stem = Path(a.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r.pop("check", None)
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    cols = ["lever", "setting", "config", "precision", "threads", "interop", "attention_dropout", "params", "seconds",
            "batch", "steps", "wall_s_per_step", "cpu_s_per_step", "examples_per_s", "speedup", "data_s_per_step",
            "data_share"]
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.csv')} (load {load0:.1f} -> "
          f"{meta['loadavg_1min_end']:.1f})")
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
