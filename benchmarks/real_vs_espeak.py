"""Real voices only, or real + espeak-ng keywords: which trains the better student for real speakers?

Both arms share everything except the training clips:

* keyword source A: the shared real Speech Commands subset (speaker-hash split);
* keyword source B: A plus espeak-ng clips of the 10 keywords, all added to *train*;
* the same babble (real train-split talkers, `_unknown_` words), the same D,
  the same seed, so validation and test are the very same noisy real clips
  (checked below by content hash);
* the same student, steps and seed.

Reported: test accuracy on the noisy real test split (unseen real speakers).
The subset has ~2.2K training clips: results are NOT comparable to the paper.

    python benchmarks/real_vs_espeak.py [--model tc_resnet] [--steps 1500] [--seconds 2] [--per-word 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def combined_manifest(real, synth):
    """Real manifest plus every synth keyword/unknown clip as extra training data (ids prefixed 'espeak/')."""
    from kws_kd.data.manifest import ClipRecord

    extra = [
        ClipRecord(f"espeak/{c.clip_id}", "train", c.labels, c.path, source=c.source)
        for c in synth.clips
        if c.path  # drop the pathless silence placeholders: real silence clips stay
    ]
    return replace(real, clips=list(real.clips) + extra, info={**real.info, "augmented_with": "espeak-ng synth"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tc_resnet")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--per-word", type=int, default=180, help="espeak clips per keyword (the 10 keywords)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (student init, data order)")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of babble, synth and noisy mixing")
    ap.add_argument("--work", default=str(ROOT / "runs" / "real_vs_espeak"), help="scratch folder (datasets, runs)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_vs_espeak.json"))
    args = ap.parse_args(argv)

    from kws_kd.data.babble import babble_sources, build_babble
    from kws_kd.data.load import load_dataset
    from kws_kd.data.noisy import build_noisy
    from kws_kd.data.speech_commands import KEYWORDS_10
    from kws_kd.data.synth import build_synth
    from kws_kd.train import TrainOptions, train

    from kws_kd.data.shared import find_shared_data

    shared = find_shared_data()
    if shared is None:
        print("the shared real Speech Commands subset was not found ($KWS_KD_SHARED_DATA or ../shared/data): "
              "this experiment needs it", file=sys.stderr)
        return 2
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    real = load_dataset(shared)
    if not (work / "babble").exists():
        build_babble(babble_sources(real, words="unknown"), work / "babble", num_files=10,
                     seconds=max(30.0, 2 * args.seconds), seed=args.data_seed)
    if not (work / "synth").exists():
        build_synth(work / "synth", per_word=args.per_word, seed=args.data_seed, words=KEYWORDS_10)
    synth = load_dataset(work / "synth")
    arms = {"real": real, "real+espeak": combined_manifest(real, synth)}
    results = {}
    for name, manifest in arms.items():
        data = work / f"noisy_{name}_{args.seconds:g}s" if args.data_seed == 0 else work / f"noisy_{name}_{args.seconds:g}s_d{args.data_seed}"
        if not data.exists():
            build_noisy(manifest, work / "babble", args.seconds, data, seed=args.data_seed)
        m = load_dataset(data)
        run = work / (f"run_{name}_{args.model}_{args.steps}_{args.seconds:g}s" + (f"_s{args.seed}" if args.seed else ""))
        t0 = time.perf_counter()
        train(TrainOptions(model=args.model, data=str(data), out=str(run), steps=args.steps,
                           eval_every=max(100, args.steps // 5), seed=args.seed))
        metrics = json.loads((run / "test_metrics.json").read_text())
        results[name] = {
            "train_clips": len(m.split("train")),
            "test_clips": len(m.split("test")),
            "test_hash": _split_hash(m, "test"),
            "test_accuracy": metrics.get("accuracy"),
            "train_seconds": round(time.perf_counter() - t0, 1),
            "run": str(run),
        }
        print(name, results[name], flush=True)
    same_test = len({r["test_hash"] for r in results.values()}) == 1
    print()
    print(f"model {args.model}, {args.steps} steps, D = {args.seconds:g} s; same noisy real test clips in both arms: {same_test}")
    print(f"{'train data':<14} {'train clips':>11} {'test acc (real, unseen speakers)':>34}")
    for name, r in results.items():
        print(f"{name:<14} {r['train_clips']:>11} {r['test_accuracy']:>34.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "steps": args.steps, "seconds": args.seconds,
                               "per_word": args.per_word, "seed": args.seed, "data_seed": args.data_seed, "same_test_clips": same_test,
                               "results": results,
                               "note": "shared subset (~2.2K real train clips); not comparable to the paper"},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def _split_hash(manifest, split: str) -> str:
    import hashlib

    h = hashlib.sha256()
    for c in sorted(manifest.split(split), key=lambda c: c.clip_id):
        h.update(c.clip_id.encode())
        h.update(Path(c.path).read_bytes())
    return h.hexdigest()[:16]


if __name__ == "__main__":
    sys.exit(main())
