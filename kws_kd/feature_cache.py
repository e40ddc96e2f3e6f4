"""MFCCs computed once per clip, so training steps skip the front end.

Why: the front end has no weights, and a materialised dataset (Noisy Speech
Commands, synth, FSD50K) gives the same audio for a clip at every epoch, so its
MFCCs are the same at every epoch too. At 8 s the front end was about a fifth of
a TC-ResNet training step (`benchmarks/train_throughput.py`); computing it once
per clip costs a few seconds per run. SpecAugment, which is random, stays in the
model and runs on the cached features at every step.

A cache is one split in manifest order: float32 features [N, frames, coeffs]
plus the batch fields of the audio pipeline (label, clip id, keyword span).
`cached_dataset` serves it as `tf.data` batches under the key `features`, in
the same order as the audio pipeline for the same (seed, epoch), so a run gives
the same batches with or without the cache and resumes exactly.

The MFCCs are computed with the training graph's front end
(`MfccFrontEnd(fft="stft")`), which agrees with the exported matmul DFT within
1e-4 (tests/test_features.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kws_kd.errors import KwsKdError

#: "auto" caches when the splits fit in `MAX_CACHE_BYTES`, "on" always, "off" never
#: (`kws_kd.train_options.FeatureCacheMode`).
MAX_CACHE_BYTES = 4 << 30


@dataclass
class FeatureCache:
    """One split's MFCCs and batch fields, rows in manifest order."""

    features: np.ndarray  # [N, frames, coeffs] float32
    labels: np.ndarray  # [N] int32 or [N, C] float32 multi-hot
    clip_ids: np.ndarray  # [N] bytes
    spans: np.ndarray  # [N, 2] float32 seconds, -1 where unknown

    def __len__(self) -> int:
        return int(self.features.shape[0])


def cache_bytes(clips: int, frames: int, coeffs: int) -> int:
    """Memory a cache of `clips` clips takes (float32)."""
    return int(clips) * int(frames) * int(coeffs) * 4


def use_cache(mode: str, clips: int, frames: int, coeffs: int) -> bool:
    """Whether a run caches features: `mode` (FEATURE_CACHE_MODES) against the memory it would take."""
    if mode == "auto":
        return cache_bytes(clips, frames, coeffs) <= MAX_CACHE_BYTES
    return mode == "on"


def build_cache(dataset, front_end, *, progress: str | None = None) -> FeatureCache:
    """Run `front_end` (an `MfccFrontEnd`) over every batch of an audio-pipeline dataset, in order."""
    import tensorflow as tf
    from tqdm import tqdm

    mfcc = tf.function(lambda audio: front_end(audio), reduce_retracing=True)
    parts: dict[str, list] = {"features": [], "labels": [], "clip_ids": [], "spans": []}
    for batch in tqdm(dataset, desc=progress, unit="batch", leave=False, disable=None if progress else True, mininterval=2.0):
        parts["features"].append(mfcc(batch["audio"]).numpy())
        parts["labels"].append(batch["label"].numpy())
        parts["clip_ids"].append(batch["clip_id"].numpy())
        parts["spans"].append(batch["keyword_span"].numpy())
    if not parts["features"]:
        raise KwsKdError("feature cache: the split has no clips")
    return FeatureCache(*(np.concatenate(parts[k]) for k in ("features", "labels", "clip_ids", "spans")))


def cached_dataset(cache: FeatureCache, batch_size: int, *, order: np.ndarray | None = None,
                   skip_batches: int = 0, drop_remainder: bool = False, extra: dict[str, np.ndarray] | None = None):
    """Batches of the cache as `tf.data` dicts (`features`, `label`, `clip_id`, `keyword_span`, + `extra`).

    `order` is the row order (default: manifest order); `extra` arrays are
    per-row (first axis = the cache's rows, e.g. teacher targets) and are
    gathered with the same rows. The gather runs in numpy: one copy of B rows
    per batch, with no large constant in the dataset graph.
    """
    import tensorflow as tf

    n = len(cache)
    rows = np.arange(n) if order is None else np.asarray(order, np.int64)
    rows = rows[int(skip_batches) * batch_size :]
    if drop_remainder:
        rows = rows[: len(rows) // batch_size * batch_size]
    arrays = {"features": cache.features, "label": cache.labels, "clip_id": cache.clip_ids,
              "keyword_span": cache.spans, **(extra or {})}
    for name, a in arrays.items():
        if a.shape[0] != n:
            raise KwsKdError(f"feature cache: array {name!r} has {a.shape[0]} rows for {n} cached clips")
    names = list(arrays)
    dtypes = [tf.as_dtype(arrays[k].dtype) if arrays[k].dtype.kind != "S" else tf.string for k in names]

    def gather(idx):
        return [arrays[k][idx] for k in names]

    def load(idx):
        out = tf.numpy_function(gather, [idx], dtypes, stateful=False)
        result = {}
        for k, t in zip(names, out):
            t.set_shape([None, *arrays[k].shape[1:]])
            result[k] = t
        return result

    ds = tf.data.Dataset.from_tensor_slices(rows).batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(load, num_parallel_calls=1, deterministic=True).prefetch(2)
