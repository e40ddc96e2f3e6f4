"""Which teacher attention target points at the keyword?

For a teacher checkpoint and a noisy dataset with keyword spans (Noisy Speech
Commands: a 1 s keyword at a random offset in D s of babble), every candidate
distillation target is scored on the clips of one split that have a span:

- full rollout (the paper's default: every layer, 0.5 A + 0.5 I, mean heads)
- rollout of the top 2 layers
- rollout of every layer but the lowest (`--layers 1:`), which FACTS found diluting
- the last layer's raw row 0 (no residual)
- every single layer's raw row 0; the best one is reported as "best single layer"
  (chosen on the same clips, so it is an optimistic upper reference)

Scores (frame 0 is left out and the rest renormalised: the identity terms of
rollout keep mass on frame 0 itself, which is c_1's own frame, not evidence):
- peak_in_span: share of clips whose highest frame lies inside the keyword span
- mass_in_span: mean attention mass inside the span
- chance: mean share of the frames that lie in the span (a flat vector's mass)
- x_chance: mass_in_span / chance

A frame is inside the span when its centre (hop * i + receptive_field / 2
samples) lies in [keyword_start, keyword_end).

    python benchmarks/teacher_attention.py --teacher DIR [DIR ...] --data NOISY_DIR
    python benchmarks/teacher_attention.py --teacher DIR --speech-commands SC_DIR --noise BABBLE_DIR --seconds 8

With --speech-commands, only the chosen split is mixed (kws_kd.data.noisy) into
--cache, so no full dataset has to be written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def targets(num_layers: int) -> dict[str, dict]:
    out = {
        "full rollout": {},
        "top-2 rollout": {"layers": "top2"},
        "rollout without layer 0": {"layers": "1:"},
        "last layer raw": {"mode": "last_layer"},
    }
    for i in range(num_layers):
        out[f"layer {i} raw"] = {"mode": "last_layer", "layers": i}
    return out


def score(vec: np.ndarray, in_span: np.ndarray) -> tuple[bool, float, float]:
    """(peak in span, mass in span, chance), frame 0 excluded and renormalised."""
    u = vec[1:].astype(np.float64)
    u = u / u.sum()
    s = in_span[1:]
    return bool(s[int(np.argmax(u))]), float(u[s].sum()), float(s.mean())


def build_test_set(sc_dir: str, noise_dir: str, seconds: float, split: str, cache: Path, seed: int):
    from kws_kd.data.manifest import Manifest
    from kws_kd.data.noisy import build_noisy
    from kws_kd.data.speech_commands import read_speech_commands

    out = cache / f"noisy-{split}-{seconds:g}s-seed{seed}"
    if not out.exists():
        m = read_speech_commands(sc_dir, seed=seed)
        only = Manifest(m.root, m.label_names, m.split(split), clip_seconds=m.clip_seconds, info=m.info)
        build_noisy(only, noise_dir, seconds, out, seed=seed)
    return out


def load_any_teacher(path: Path):
    """A saved teacher folder, or an in-progress `teacher finetune` resume state (state.pt):
    the latter is rebuilt from the config recorded in it, so running checkpoints can be scored."""
    import torch

    from export.teacher_model import build_teacher, load_teacher

    if path.is_dir():
        return load_teacher(path), None
    state = torch.load(path, map_location="cpu", weights_only=False)
    fp = state.get("fingerprint", {})
    model = build_teacher(fp.get("checkpoint") or fp.get("config"), list(state["labels"]), pooling=fp.get("pooling", "first"))
    model.load_state_dict(state["model"])
    return model.eval(), int(state.get("step", -1))


def evaluate(teacher_dir: Path, manifest, split: str, max_clips: int, batch_size: int) -> dict:
    import torch

    from kws_kd.audio import read_audio, pad_or_crop
    from kws_kd.rollout import attention_rollout

    from export.export_store import _device_matmul

    model, step = load_any_teacher(teacher_dir)
    matmul = _device_matmul("cpu")
    if list(model.labels) != list(manifest.label_names):
        raise SystemExit(f"{teacher_dir}: teacher labels {model.labels} differ from the data's {manifest.label_names}")
    clips = [c for c in manifest.split(split) if c.keyword_start is not None]
    clips = sorted(clips, key=lambda c: c.clip_id)[:max_clips]
    num_layers = model.wav2vec2.config.num_hidden_layers
    hop = round(16000 / model.frame_rate)
    rf = model.receptive_field_samples
    names = targets(num_layers)
    acc = {n: [] for n in names}
    correct = 0
    clip_samples = round(manifest.clip_seconds * 16000) if manifest.clip_seconds else None
    label_index = manifest.label_index()
    start = time.perf_counter()
    for first in range(0, len(clips), batch_size):
        batch = clips[first : first + batch_size]
        audio = [read_audio(c.path) for c in batch]
        if clip_samples:
            audio = [pad_or_crop(a, clip_samples) for a in audio]
        if len({len(a) for a in audio}) > 1:
            raise SystemExit("this benchmark needs clips of one length (a noisy dataset)")
        with torch.inference_mode():
            out = model(torch.from_numpy(np.stack(audio)), output_attentions=True)
        maps = torch.stack(out.attentions, dim=1).float().numpy()  # [B, L, H, T, T]
        pred = out.logits.argmax(-1).numpy()
        t = maps.shape[-1]
        centres = (np.arange(t) * hop + rf / 2) / 16000.0
        vecs = {n: attention_rollout(maps, **kw, matmul=matmul) for n, kw in names.items()}
        for b, c in enumerate(batch):
            correct += int(pred[b] == label_index[c.labels[0]])
            in_span = (centres >= c.keyword_start) & (centres < c.keyword_end)
            for n in names:
                acc[n].append(score(vecs[n][b], in_span))
    seconds = time.perf_counter() - start
    rows = {}
    for n, vals in acc.items():
        peak, mass, chance = (np.array(x) for x in zip(*vals))
        rows[n] = {
            "peak_in_span": round(float(peak.mean()), 4),
            "mass_in_span": round(float(mass.mean()), 4),
            "chance": round(float(chance.mean()), 4),
            "x_chance": round(float(mass.mean() / chance.mean()), 3),
        }
    single = {n: r for n, r in rows.items() if n.startswith("layer ")}
    best = max(single, key=lambda n: single[n]["x_chance"])
    rows["best single layer"] = dict(rows[best], layer=best)
    return {
        "teacher": str(teacher_dir),
        "step": step,
        "clips": len(clips),
        "split": split,
        "clip_seconds": manifest.clip_seconds,
        "teacher_accuracy": round(correct / max(len(clips), 1), 4),
        "num_layers": num_layers,
        "seconds": round(seconds, 1),
        "targets": rows,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", nargs="+", required=True,
                    help="teacher folder(s) (save_teacher format) or `teacher finetune` resume state files (state.pt)")
    ap.add_argument("--data", help="noisy dataset folder with keyword spans")
    ap.add_argument("--speech-commands", help="build the split's noisy clips from this Speech Commands folder")
    ap.add_argument("--noise", help="noise folder for --speech-commands (e.g. `kws-kd data babble` output)")
    ap.add_argument("--seconds", type=float, default=8.0, help="clip length D for --speech-commands")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/kws-kd-teacher-attention", help="where --speech-commands clips are mixed")
    ap.add_argument("--split", default="test", choices=("train", "validation", "test"))
    ap.add_argument("--max-clips", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teacher_attention.json"))
    args = ap.parse_args(argv)

    import torch

    from kws_kd.data.load import load_dataset

    torch.set_num_threads(args.threads)
    if args.data:
        data = Path(args.data)
    elif args.speech_commands and args.noise:
        data = build_test_set(args.speech_commands, args.noise, args.seconds, args.split, Path(args.cache), args.seed)
    else:
        ap.error("give --data, or --speech-commands with --noise")
    manifest = load_dataset(data)
    results = []
    for teacher in args.teacher:
        r = evaluate(Path(teacher), manifest, args.split, args.max_clips, args.batch_size)
        results.append(r)
        print(f"\n{r['teacher']}{'' if r['step'] is None else ' (step %d)' % r['step']}: {r['clips']} {r['split']} clips of {r['clip_seconds']} s, "
              f"teacher accuracy {r['teacher_accuracy']:.3f}")
        print("target | peak in span | mass in span | chance | x chance")
        print("--- | --- | --- | --- | ---")
        for name in ("full rollout", "top-2 rollout", "rollout without layer 0", "last layer raw",
                     "best single layer"):
            t = r["targets"][name]
            label = f"{name} ({t['layer']})" if "layer" in t else name
            print(f"{label} | {t['peak_in_span']:.3f} | {t['mass_in_span']:.3f} | {t['chance']:.3f} | {t['x_chance']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "teacher_attention", "data": str(data),
                               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results},
                              indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
