"""Does the teacher's attention point at the keyword? A quick check before shipping a teacher.

For clips with a known keyword span, for each target (the paper's full rollout,
the rollout of the top 2 layers, the last layer's raw row 0), it reports:
- `peak_in_span`: share of clips whose row-0 peak lies inside the span;
- `mass`: mean attention mass inside the span; `chance`: the span's mean share
  of the frames; `ratio` = mass / chance (1.0 = no focus).
Frame 0 is excluded and the rest renormalised: the rollout's identity terms keep
a few per cent of the mass on frame 0 itself, which would otherwise win the argmax.
A frame is inside the span when its centre is.

`python -m export.attention_check TEACHER_DIR --data DIR [--split test] [--seconds 8]`
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from export.teacher_data import fixed_batches
from export.teacher_model import TeacherClassifier
from kws_kd.audio import SAMPLE_RATE
from kws_kd.rollout import attention_rollout

TARGETS = {
    "rollout": dict(mode="rollout"),
    "rollout_top2": dict(mode="rollout", layers="-2:"),
    "last_layer": dict(mode="last_layer", layers="-1:"),
}


def frame_centres(model: TeacherClassifier, frames: int) -> np.ndarray:
    hop = SAMPLE_RATE / model.frame_rate
    return (np.arange(frames) * hop + model.receptive_field_samples / 2) / SAMPLE_RATE


def span_stats(vectors: np.ndarray, centres: np.ndarray, spans: np.ndarray) -> dict:
    """vectors [N, T] row-0 attention; spans [N, 2] seconds (rows with span < 0 are skipped)."""
    keep = spans[:, 0] >= 0
    v, s = vectors[keep][:, 1:], spans[keep]
    v = v / np.clip(v.sum(1, keepdims=True), 1e-12, None)
    inside = (centres[None, 1:] >= s[:, :1]) & (centres[None, 1:] <= s[:, 1:])
    mass = (v * inside).sum(1)
    chance = inside.mean(1)
    peak_in = inside[np.arange(len(v)), v.argmax(1)]
    return {
        "clips": int(len(v)),
        "peak_in_span": float(peak_in.mean()) if len(v) else float("nan"),
        "mass": float(mass.mean()) if len(v) else float("nan"),
        "chance": float(chance.mean()) if len(v) else float("nan"),
        "ratio": float(mass.mean() / chance.mean()) if len(v) else float("nan"),
    }


@torch.no_grad()
def attention_focus(model: TeacherClassifier, source, seconds: float = 8.0, *, limit: int | None = None,
                    batch_size: int = 8, seed: int = 1) -> dict:
    """Accuracy and keyword focus of each attention target over a deterministic pass of `source`."""
    model.eval()
    n = int(round(seconds * SAMPLE_RATE))
    rows = {k: [] for k in TARGETS}
    spans, correct, total = [], 0, 0
    for batch in fixed_batches(source, n, batch_size, limit, seed):
        out = model(torch.from_numpy(batch.audio), output_attentions=True)
        maps = torch.stack(out.attentions, 1).float().numpy()  # [B, L, H, T, T]
        mask = out.frame_mask.numpy()
        for name, kw in TARGETS.items():
            rows[name].append(attention_rollout(maps, mask, **kw))
        spans.append(batch.spans)
        if not model.multi_label:
            correct += int((out.logits.argmax(1).numpy() == batch.labels).sum())
        total += len(batch.labels)
    spans_a = np.concatenate(spans)
    frames = rows["rollout"][0].shape[-1]
    centres = frame_centres(model, frames)
    result = {"seconds": seconds, "clips": total, "accuracy": correct / max(1, total) if not model.multi_label else None}
    for name in TARGETS:
        result[name] = span_stats(np.concatenate(rows[name]), centres, spans_a)
    return result


def main(argv=None) -> int:
    from export.finetune_setup import FinetuneOptions, make_sources
    from export.teacher_model import load_teacher
    from kws_kd.data.load import load_dataset

    p = argparse.ArgumentParser(prog="python -m export.attention_check")
    p.add_argument("teacher")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--fresh-mix", action="store_true", help="mix 1 s keywords into babble (raw Speech Commands)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    manifest = load_dataset(a.data)
    opts = FinetuneOptions(data=a.data, out="", fresh_mix=a.fresh_mix, clip_seconds=(a.seconds,), progress=False)
    source = make_sources(manifest, opts, splits=(a.split,))[a.split]
    print(json.dumps(attention_focus(load_teacher(a.teacher), source, a.seconds, limit=a.limit), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
