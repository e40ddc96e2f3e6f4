"""Tiny generated datasets and teacher stores for the training/eval tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kws_kd.audio import write_wav
from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest

SR = 16000
LABELS = ["low", "mid", "high"]
FREQS = [400.0, 1200.0, 3000.0]


def make_tone_dataset(root: Path, *, seconds: float = 1.0, per_split=(8, 4, 4), seed: int = 0) -> Manifest:
    """Each clip: quiet noise with a 0.25 s tone (its frequency is the label) at a random offset; span recorded."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    clips = []
    for split, count in zip(("train", "validation", "test"), per_split):
        for k in range(count):
            for li, (lab, f) in enumerate(zip(LABELS, FREQS)):
                audio = rng.normal(0, 0.02, n)
                start = rng.uniform(0, seconds - 0.25)
                s0 = int(start * SR)
                t = np.arange(int(0.25 * SR)) / SR
                audio[s0 : s0 + len(t)] += 0.5 * np.sin(2 * np.pi * f * t)
                cid = f"{split}/{lab}_{k}"
                path = root / f"{split}_{lab}_{k}.wav"
                write_wav(path, np.clip(audio, -1, 1).astype(np.float32))
                clips.append(ClipRecord(cid, split, (lab,), str(path), round(start, 4), round(start + 0.25, 4)))
    manifest = Manifest(root=str(root), label_names=list(LABELS), clips=clips, clip_seconds=seconds)
    write_manifest(manifest, root)
    return manifest


def make_store(
    path: Path, manifest: Manifest, *, frames: int = 49, splits=("train", "validation", "test"), drop=(), poison=None, labels=None
):
    """A teacher store whose attention peaks on each clip's keyword span (frames at 50 Hz)."""
    from kws_kd.rollout import RolloutOptions
    from kws_kd.store import init_store, make_meta, write_shard

    labels = list(labels or manifest.label_names)
    meta = make_meta(
        manifest_hash=manifest.content_hash(),
        labels=labels,
        multi_label=False,
        teacher_hash="test-teacher",
        teacher={"source": "test"},
        frame_rate=50.0,
        sample_rate=SR,
        rollout=RolloutOptions(),
    )
    init_store(path, meta)
    ids, spl, att, logits = [], [], [], []
    for c in manifest.clips:
        if c.split not in splits or c.clip_id in drop:
            continue
        centres = (np.arange(frames) + 0.5) / 50.0
        a = 0.05 + np.exp(-0.5 * ((centres - (c.keyword_start + c.keyword_end) / 2) / 0.05) ** 2)
        a = a / a.sum()
        if poison == c.clip_id:
            a[3] = np.nan
        z = np.arange(len(labels), dtype=float)  # distinct per class, in the store's label order
        z[labels.index(c.label)] = 10.0
        ids.append(c.clip_id)
        spl.append(c.split)
        att.append(a.astype(np.float32))
        logits.append(z)
    write_shard(path, meta, splits=splits, shard_index=0, num_shards=1, clip_ids=ids, clip_splits=spl, attentions=att, logits=np.array(logits))
    return path
