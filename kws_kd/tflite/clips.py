"""Fixed-length float clips from a manifest split, for calibration and verification.

Numpy only: a representative set and a handful of held-out clips do not need
the tf.data pipeline. A clip shorter than the model input is zero-padded on
both sides (the keyword stays centred), a longer one is cropped from the start.
"""

from __future__ import annotations

import numpy as np

from kws_kd.audio import pad_or_crop, read_audio
from kws_kd.data.manifest import Manifest


def load_clips(
    manifest: Manifest,
    split: str,
    clip_samples: int,
    *,
    max_clips: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (audio [N, clip_samples] float32, targets, clip ids) for `split`.

    Targets are int label indices [N], or multi-hot float32 [N, C] for
    multi-label data. With `max_clips`, a seeded random subset (same every call).
    """
    records = manifest.split(split)
    if max_clips is not None and len(records) > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(len(records), max_clips, replace=False))
        records = [records[i] for i in idx]
    audio = np.zeros((len(records), clip_samples), dtype=np.float32)
    for i, rec in enumerate(records):
        audio[i] = pad_or_crop(read_audio(rec.path, manifest.sample_rate), clip_samples, centre=True)
    targets = manifest.encode_labels(records)
    return audio, targets, [r.clip_id for r in records]
