"""Why does distillation cost TC-ResNet accuracy at 8 s? One variable changed per run.

Variants (all TC-ResNet, same data, seed, steps, recipe and init as the learning curves):

| variant | what changes against `kd` (λ = 0.25, the teacher's rollout) |
|---|---|
| vanilla | λ = 0 |
| kd | - |
| kd-0.1 | λ = 0.1 |
| oracle | target: uniform over the labelled keyword span (no teacher at all) |
| no-query | the branch scores c'_t . c'_middle (no Dense query projection) |
| early-branch | the branch reads c' after block 3 (full time resolution) instead of the last block |

The 0.75 weight on the classification loss alone (λ = 0.25 with the KL term
off) is not a run: under Adam (the CPU-scale recipe), a constant factor on the
loss scales the gradient's first and second moments alike and leaves every
update unchanged but for epsilon (1e-8), so that run would repeat `vanilla`.

If the oracle helps where the teacher's rollout hurts, the teacher's target is
the cause. Test accuracies are reported; nothing is chosen on them.

    python benchmarks/kd_ablation.py [--steps 1500] [--init scratch|warm] [--out runs/curves]
        [--json docs/kd_ablation.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = "tc_resnet"
TEACHER_FRAME_RATE = 50.0  # wav2vec 2.0's 20 ms frames: the store's time axis

VARIANTS = {
    "vanilla": {"kd_lambda": 0.0},
    "kd": {"kd_lambda": 0.25},
    "kd-0.1": {"kd_lambda": 0.1},
    "oracle": {"kd_lambda": 0.25, "oracle": True},
    "no-query": {"kd_lambda": 0.25, "student_config": {"branch_query": False}},
    "early-branch": {"kd_lambda": 0.25, "student_config": {"branch_block": 3}},
}


def oracle_vector(frames: int, span: tuple[float, float] | None) -> np.ndarray:
    """Uniform over the teacher frames whose centres fall in the span; uniform over the clip without a span."""
    centres = (np.arange(frames) + 0.5) / TEACHER_FRAME_RATE
    inside = np.ones(frames, bool) if span is None else (centres >= span[0]) & (centres <= span[1])
    if not inside.any():
        inside[np.argmin(np.abs(centres - span[0]))] = True
    return (inside / inside.sum()).astype(np.float32)


def write_oracle_store(teacher_store: Path, data: Path, out: Path) -> Path:
    """A store with the teacher store's identity and logits, and oracle attention vectors of the same length."""
    from kws_kd.data.load import load_dataset
    from kws_kd.store import TeacherStore, init_store, write_shard

    if (out / "store.json").is_file():
        return out
    store = TeacherStore.open(teacher_store)
    manifest = load_dataset(data)
    meta = dict(store.meta)
    meta["teacher"] = {**meta.get("teacher", {}), "oracle": "uniform over the labelled keyword span"}
    tmp = out.with_name(out.name + ".partial")
    init_store(tmp, meta)
    clips = [c for c in manifest.clips if c.clip_id in store]
    frames = len(store.attention(clips[0].clip_id))
    spans = [None if c.keyword_start is None else (c.keyword_start, c.keyword_end) for c in clips]
    write_shard(tmp, meta, splits=("train", "validation", "test"), shard_index=0, num_shards=1,
                clip_ids=[c.clip_id for c in clips], clip_splits=[c.split for c in clips],
                attentions=[oracle_vector(frames, s) for s in spans],
                logits=np.stack([store.logits(c.clip_id) for c in clips]))
    tmp.rename(out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--init", choices=("warm", "scratch"), default="scratch",
                    help="scratch: where distillation cost TC-ResNet accuracy in every run so far")
    ap.add_argument("--pretrain-steps", type=int, default=1500)
    ap.add_argument("--rollout-layers", default="1:")
    ap.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/curves", help="stage cache, shared with learning_curves.py")
    ap.add_argument("--json", default=str(ROOT / "docs" / "kd_ablation.json"))
    args = ap.parse_args(argv)

    from kws_kd.atomic import atomic_write_text
    from kws_kd.experiment import ExperimentOptions, noisy_data, teacher_folder, teacher_store
    from kws_kd.student_stages import student_run
    from kws_kd.stages import StageRunner

    runner = StageRunner(Path(args.out) / "stages")
    base = ExperimentOptions(seconds=args.seconds, steps=args.steps, batch_size=args.batch_size,
                             eval_every=args.eval_every, seed=args.seed, rollout_layers=args.rollout_layers,
                             precision=args.precision, pretrain_steps=args.pretrain_steps if args.init == "warm" else 0)
    data = noisy_data(base, runner)
    teacher, teacher_stages = teacher_folder(base, runner, data)
    store, store_stage = teacher_store(base, runner, data, teacher, teacher_stages)
    oracle = write_oracle_store(store, data.path, Path(args.out) / f"oracle-store-{store_stage.key[:12]}")
    rows = []
    for name in args.variants:
        v = VARIANTS[name]
        opts = replace(base, student_config=v.get("student_config", {}))
        target = oracle if v.get("oracle") else store
        stage = student_run(opts, runner, MODEL, v["kd_lambda"], data, target, [store_stage], seed=args.seed,
                            ship=False)
        s = stage.summary
        rows.append({"variant": name, **{k: v[k] for k in v if k != "oracle"}, "oracle": bool(v.get("oracle")),
                     "best_val": s["best_val_metric"], "test_accuracy": s["float_metric"],
                     "attention": s["attention"], "history": s["history"], "seconds": stage.seconds})
        att = s["attention"] or {}
        print(f"{name:13s} best val {s['best_val_metric']:.3f}  test {s['float_metric']:.3f}  "
              f"attention x{att.get('ratio_to_chance', float('nan')):.2f} chance", flush=True)
    result = {"options": vars(args), "model": MODEL, "rows": rows}
    atomic_write_text(Path(args.json), json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
