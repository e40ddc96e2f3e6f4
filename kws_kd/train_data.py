"""The data a training run reads: the (x, y) stream `fit()` consumes, the validation/test batches, feature caches.

Data order is a pure function of (seed, step): epoch e is the pipeline's
permutation for (seed, e), each epoch yields its whole batches only, and the
stream starting at step k is the unbroken stream with its first k batches
left out (skipped before any audio is read). So a resumed run gets the same
batches as an unbroken one, with or without cached features.

Elements are `(x, y)`: x the model input (audio [B, samples], or MFCCs
[B, frames, coeffs] from a `kws_kd.feature_cache.FeatureCache`), y a dict with
`label` and, when distilling, `teacher_attention` [B, n'] and `teacher_logits`
[B, C], rows of the arrays `kws_kd.train.prepare` made in train-split order.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kws_kd.errors import KwsKdError

#: Epochs the stream holds at most (it is consumed for `steps` batches only).
_MAX_EPOCHS = 1 << 20


def eval_dataset(manifest, split: str, batch_size: int, clip_samples: int, *, max_clips: int | None = None):
    """Every clip of `split` in manifest order (the data path of validation, eval and attention plots)."""
    from kws_kd.data.pipeline import make_dataset

    clips = manifest.split(split)
    if max_clips is not None:
        clips = clips[:max_clips]
    if not clips:
        raise KwsKdError(f"{manifest.root}: split {split!r} has no clips")
    return make_dataset(replace(manifest, clips=clips), split, batch_size, clip_samples=clip_samples, shuffle=False)


def targets_of(prep) -> dict[str, np.ndarray]:
    """The per-train-clip teacher arrays a run distils from (none for a vanilla run)."""
    return {k: v for k, v in (("teacher_attention", prep.teacher_attention), ("teacher_logits", prep.teacher_logits))
            if v is not None}


def train_stream(prep, start_step: int, cache=None):
    """The training stream from batch `start_step` on: `(x, y)` batches, epoch after epoch."""
    import tensorflow as tf

    cfg = prep.config
    per_epoch = len(prep.train_ids) // cfg.batch_size
    first_epoch, skip = divmod(start_step, per_epoch)
    build = _cached_epoch(prep, cache, per_epoch) if cache is not None else _audio_epoch(prep, per_epoch)
    epochs = tf.data.Dataset.range(first_epoch, first_epoch + _MAX_EPOCHS)
    return epochs.flat_map(build).skip(skip).prefetch(tf.data.AUTOTUNE)


def _perm_seed(seed: int, epoch):
    """The pipeline's per-epoch permutation seed (`kws_kd.data.pipeline.epoch_order`)."""
    import tensorflow as tf

    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64) + tf.constant(0x5EED, tf.int64)])


def _cached_epoch(prep, cache, per_epoch: int):
    """Epoch e of the cached features: the pipeline's permutation, whole batches, rows gathered in numpy."""
    import tensorflow as tf

    cfg, n = prep.config, len(cache)
    arrays = {"label": cache.labels, **targets_of(prep)}
    names = list(arrays)

    def gather(rows):
        return [cache.features[rows]] + [arrays[k][rows] for k in names]

    def load(rows):
        out = tf.numpy_function(gather, [rows], [tf.float32] + [tf.as_dtype(arrays[k].dtype) for k in names],
                                stateful=False)
        out[0].set_shape([cfg.batch_size, *cache.features.shape[1:]])
        for t, k in zip(out[1:], names):
            t.set_shape([cfg.batch_size, *arrays[k].shape[1:]])
        return out[0], dict(zip(names, out[1:]))

    def epoch(e):
        order = tf.random.experimental.index_shuffle(tf.range(n, dtype=tf.int64), seed=_perm_seed(cfg.seed, e),
                                                     max_index=n - 1)
        rows = tf.data.Dataset.from_tensor_slices(order[: per_epoch * cfg.batch_size])
        return rows.batch(cfg.batch_size, drop_remainder=True).map(load)

    return epoch


def _audio_epoch(prep, per_epoch: int):
    """Epoch e through the audio pipeline, with the teacher targets joined by clip id."""
    import tensorflow as tf

    from kws_kd.data.pipeline import make_dataset

    cfg = prep.config
    consts = {k: tf.constant(v) for k, v in targets_of(prep).items()}
    table = None
    if consts:
        ids = tf.constant(prep.train_ids)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ids, tf.range(len(prep.train_ids), dtype=tf.int32)), -1)

    def join(batch):
        y = {"label": batch["label"]}
        if table is not None:
            row = table.lookup(batch["clip_id"])
            y.update({k: tf.gather(v, row) for k, v in consts.items()})
        return batch["audio"], y

    def epoch(e):
        ds = make_dataset(prep.manifest, "train", cfg.batch_size, clip_samples=cfg.clip_samples, shuffle=True,
                          seed=cfg.seed, epoch=e, drop_remainder=True)
        return ds.take(per_epoch).map(join)

    return epoch


def use_feature_cache(prep) -> bool:
    """Whether this run trains from cached MFCCs (`kws_kd.feature_cache`): its mode against the memory needed."""
    from kws_kd.feature_cache import use_cache
    from kws_kd.features import num_frames
    from kws_kd.students.registry import make_config

    cfg = prep.config
    front = make_config(cfg.model, cfg.student_config).front_end
    clips = sum(len(prep.manifest.split(s)) for s in ("train", "validation", "test"))
    return use_cache(cfg.feature_cache, clips, num_frames(cfg.clip_samples, front), front.num_coeffs)


class FeatureCaches:
    """Per-split feature caches of one run, built on first use with the student's own front end."""

    def __init__(self, prep, front_end, progress: bool):
        self.prep, self.front_end, self.progress = prep, front_end, progress
        self.caches: dict = {}

    def get(self, split: str):
        from kws_kd.feature_cache import build_cache

        if split not in self.caches:
            cfg = self.prep.config
            audio = eval_dataset(self.prep.manifest, split, 100, cfg.clip_samples)
            self.caches[split] = build_cache(audio, self.front_end, progress=f"MFCC {split}" if self.progress else None)
            if split == "train" and list(self.caches[split].clip_ids.astype(str)) != self.prep.train_ids:
                raise KwsKdError(f"{cfg.data}: train clips came back in another order than the manifest's")
        return self.caches[split]

    def dataset(self, split: str, batch_size: int = 100):
        from kws_kd.feature_cache import cached_dataset

        return cached_dataset(self.get(split), batch_size)
