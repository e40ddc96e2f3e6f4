"""The shared tf.data pipeline: a Manifest split -> batches of raw 16 kHz audio.

Batches are dicts (docs/architecture.md):

* ``audio``         float32 [B, samples] in [-1, 1]
* ``label``         int32 [B] (single-label) or float32 multi-hot [B, C]
* ``clip_id``       string [B] (the key into the teacher attention store)
* ``keyword_span``  float32 [B, 2] in seconds, -1 where unknown

Why it is built this way:

* 16 kHz PCM WAVs (Speech Commands, Noisy SC, synth) are decoded by TF ops
  (`tf.io.read_file` + `tf.audio.decode_wav`) in a parallel map, off the GIL,
  so the pipeline outruns student training. FSD50K (44.1 kHz, any length) goes
  through `read_audio` (soundfile + soxr) in a `tf.numpy_function`.
* Order is a pure function of (seed, epoch): the shuffle is a stateless
  permutation (`index_shuffle`), so a resumed run gets the same batches. Build
  the dataset for `epoch=k` or skip ahead `skip_batches=n` (indices are skipped
  before any audio is read, so skipping is cheap).
* `fresh_mix=<noise dir>` re-mixes training clips every epoch (new noise crop,
  new keyword position) from the keyword in each record's `source`. Randomness
  comes from (seed, epoch, clip_id). The keyword span changes with it, so a
  teacher store computed on the materialised clips no longer applies: keep it
  off when distilling.
* `extra` is one callable applied to each batch dict (after batching). Use
  `table_extra(clip_ids, arrays)` to join per-clip numpy arrays (teacher
  targets) by clip id.

This is the only module under kws_kd.data that imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from kws_kd.audio import SAMPLE_RATE
from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.data.noisy import KEYWORD_WEIGHT, NOISE_WEIGHT, NoiseBank
from kws_kd.errors import KwsKdError

SILENCE = "_silence_"
AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(
    manifest: Manifest,
    split: str,
    batch_size: int,
    *,
    clip_samples: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    fresh_mix: str | Path | NoiseBank | None = None,
    drop_remainder: bool = False,
    epoch: int = 0,
    skip_batches: int = 0,
    extra: Callable[[dict], dict] | None = None,
    decoder: str = "auto",
    in_memory: bool = False,
    num_parallel_calls: int = AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of one split, deterministic given (seed, epoch).

    `clip_samples` defaults to the manifest's clip length (1 s if unknown);
    clips are zero-padded or cropped to it. With `repeat`, epochs `epoch`,
    `epoch+1`, ... follow each other, each with its own permutation and fresh
    mix. `decoder` is "tf" (16 kHz PCM WAV), "numpy" (anything soundfile
    reads, resampled) or "auto" (numpy for multi-label/FSD50K, else tf).
    `in_memory` reads the whole split once into an int16 array and gathers
    whole batches from it (fastest; costs 2 bytes x samples x clips of RAM).
    Fresh mixing always holds the 1 s keywords and the noise in memory.
    """
    records = manifest.split(split)
    if not records:
        raise KwsKdError(f"{manifest.root}: split {split!r} has no clips")
    if batch_size < 1:
        raise KwsKdError(f"batch size must be positive, got {batch_size}")
    if clip_samples is None:
        clip_samples = int(round((manifest.clip_seconds or 1.0) * SAMPLE_RATE))
    if decoder == "auto":
        decoder = "numpy" if manifest.multi_label else "tf"
    if decoder not in ("tf", "numpy"):
        raise KwsKdError(f"decoder must be 'auto', 'tf' or 'numpy', got {decoder!r}")
    n = len(records)
    table = _tensors(manifest, records)

    indices = _index_stream(n, shuffle, seed, epoch, repeat)
    if skip_batches:
        indices = indices.skip(int(skip_batches) * batch_size)

    if in_memory and not (fresh_mix is not None and split == "train"):
        # Whole-batch loader: batch the indices, then gather B clips at once.
        ds = indices.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(_memory_loader(table, records, clip_samples), num_parallel_calls=num_parallel_calls, deterministic=True)
    else:
        if fresh_mix is not None and split == "train":
            loader = _fresh_mixer(table, records, fresh_mix, clip_samples, seed)
        elif decoder == "tf":
            loader = _tf_loader(table, clip_samples)
        else:
            loader = _numpy_loader(table, records, clip_samples)
        ds = indices.map(loader, num_parallel_calls=num_parallel_calls, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if extra is not None:
        ds = ds.map(extra, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)


def eval_dataset(manifest: Manifest, split: str, batch_size: int, clip_samples: int, *,
                 max_clips: int | None = None) -> tf.data.Dataset:
    """Every clip of `split` (its first `max_clips`) in manifest order, unshuffled, the last batch kept.

    The data path of validation, `kws-kd eval` and the attention plots.
    """
    from dataclasses import replace

    clips = manifest.split(split)[:max_clips]
    if not clips:
        raise KwsKdError(f"{manifest.root}: split {split!r} has no clips")
    return make_dataset(replace(manifest, clips=clips), split, batch_size, clip_samples=clip_samples)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation `make_dataset(shuffle=True)` uses for an epoch (for checks and resume logic)."""
    i = tf.range(n, dtype=tf.int64)
    return tf.random.experimental.index_shuffle(i, seed=_perm_seed(seed, epoch), max_index=n - 1).numpy()


def table_extra(
    clip_ids: list[str] | np.ndarray, arrays: Mapping[str, np.ndarray]
) -> Callable[[dict], dict]:
    """An `extra` that adds `arrays[name][row of clip_id]` to each batch under `name`.

    Every array's first axis follows `clip_ids`. A batch clip id missing from
    `clip_ids` fails with a message naming the problem (not a gather error).
    """
    keys = tf.constant([str(c) for c in clip_ids])
    rows = tf.range(len(clip_ids), dtype=tf.int64)
    lookup = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, rows), default_value=-1)
    consts = {name: tf.constant(np.asarray(a)) for name, a in arrays.items()}
    for name, a in consts.items():
        if a.shape[0] != len(clip_ids):
            raise KwsKdError(f"extra array {name!r} has {a.shape[0]} rows for {len(clip_ids)} clip ids")

    def add(batch: dict) -> dict:
        idx = lookup.lookup(batch["clip_id"])
        check = tf.debugging.assert_non_negative(
            idx, message="a clip id of this dataset is not in the extra table (teacher store built for other data?)")
        # Dataset functions do not order ops by themselves: without this the gather's own
        # "indices[0] = -1" error could win the race against the readable message.
        with tf.control_dependencies([check]):
            idx = tf.identity(idx)
        out = dict(batch)
        for name, a in consts.items():
            out[name] = tf.gather(a, idx)
        return out

    return add


# ---------------------------------------------------------------- internals


def _perm_seed(seed: int, epoch) -> tf.Tensor:
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64) + tf.constant(0x5EED, tf.int64)])


def _index_stream(n: int, shuffle: bool, seed: int, epoch: int, repeat: bool) -> tf.data.Dataset:
    """(epoch, index) pairs: one permutation of 0..n-1 per epoch."""
    epochs = tf.data.Dataset.counter(start=epoch) if repeat else tf.data.Dataset.range(epoch, epoch + 1)

    def one_epoch(e):
        i = tf.data.Dataset.range(n)
        if shuffle:
            i = i.map(lambda k: tf.random.experimental.index_shuffle(k, seed=_perm_seed(seed, e), max_index=n - 1))
        return i.map(lambda k: (e, k))

    return epochs.flat_map(one_epoch)


def _tensors(manifest: Manifest, records: list[ClipRecord]) -> dict[str, tf.Tensor]:
    labels = manifest.encode_labels(records)
    if not manifest.multi_label:
        labels = labels.astype(np.int32)
    spans = np.array(
        [[-1.0, -1.0] if c.keyword_start is None else [c.keyword_start, c.keyword_end] for c in records], np.float32
    )
    return {
        "path": tf.constant([c.path for c in records]),
        "source": tf.constant([c.source for c in records]),
        "clip_id": tf.constant([c.clip_id for c in records]),
        "label": tf.constant(labels),
        "span": tf.constant(spans),
        "silence": tf.constant([SILENCE in c.labels for c in records]),
    }


def _decode(path: tf.Tensor, clip_samples: int) -> tf.Tensor:
    """Decode a 16 kHz PCM WAV to [clip_samples] (zero-pad/crop); empty path -> silence."""

    def read():
        audio, rate = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
        tf.debugging.assert_equal(
            rate, SAMPLE_RATE, message=tf.strings.join(["not 16 kHz (use decoder='numpy' to resample): ", path])
        )
        return audio[:clip_samples, 0]

    audio = tf.cond(tf.strings.length(path) > 0, read, lambda: tf.zeros([0], tf.float32))
    audio = tf.pad(audio, [[0, clip_samples - tf.shape(audio)[0]]])
    return tf.ensure_shape(audio, [clip_samples])


def _element(table: dict, i: tf.Tensor, audio: tf.Tensor, span: tf.Tensor | None = None) -> dict:
    return {
        "audio": audio,
        "label": tf.gather(table["label"], i),
        "clip_id": tf.gather(table["clip_id"], i),
        "keyword_span": tf.gather(table["span"], i) if span is None else span,
    }


def _tf_loader(table: dict, clip_samples: int):
    def load(e, i):
        return _element(table, i, _decode(tf.gather(table["path"], i), clip_samples))

    return load


def _numpy_loader(table: dict, records: list[ClipRecord], clip_samples: int):
    from kws_kd.data.speech_commands import load_clip

    def read(i):
        return load_clip(records[int(i)], clip_samples)

    def load(e, i):
        audio = tf.numpy_function(read, [i], tf.float32, stateful=False)
        return _element(table, i, tf.ensure_shape(audio, [clip_samples]))

    return load


def _preload(records: list[ClipRecord], num_samples: int, use_source: bool) -> tf.Tensor:
    """int16 [N, num_samples] of every record's audio (or its keyword `source`); empty path -> zeros."""
    from kws_kd.audio import pad_or_crop, read_audio, to_int16
    from tqdm import tqdm

    out = np.zeros((len(records), num_samples), np.int16)
    for r, c in enumerate(tqdm(records, desc="loading clips", unit="clip", leave=False, mininterval=2.0, disable=None)):
        path = c.source if use_source else c.path
        if path:
            out[r] = to_int16(pad_or_crop(read_audio(path), num_samples))
    return tf.constant(out)


def _memory_loader(table: dict, records: list[ClipRecord], clip_samples: int):
    audio_all = _preload(records, clip_samples, use_source=False)

    def load(e, i):
        audio = tf.cast(tf.gather(audio_all, i), tf.float32) / 32768.0
        return {
            "audio": audio,
            "label": tf.gather(table["label"], i),
            "clip_id": tf.gather(table["clip_id"], i),
            "keyword_span": tf.gather(table["span"], i),
        }

    return load


def _fresh_mixer(table: dict, records: list[ClipRecord], noise, clip_samples: int, seed: int):
    """Re-mix each training clip per epoch: new noise window, new keyword offset (TF ops, data in RAM)."""
    kw_samples = SAMPLE_RATE
    if clip_samples < kw_samples:
        raise KwsKdError(f"fresh mixing needs clips of at least 1 s, got {clip_samples} samples")
    missing = [c.clip_id for c in records if not c.source and SILENCE not in c.labels]
    if missing:
        raise KwsKdError(f"fresh mixing needs each clip's keyword file in `source`; {missing[0]!r} has none")
    bank = noise if isinstance(noise, NoiseBank) else NoiseBank.from_dir(noise, clip_samples)
    windows = np.array([len(c) - clip_samples + 1 for c in bank.clips], np.int64)
    if np.any(windows < 1):
        raise KwsKdError(f"a noise clip in the bank is shorter than {clip_samples} samples")
    starts = np.cumsum([0] + [len(c) for c in bank.clips[:-1]]).astype(np.int64)
    noise_all = tf.constant(np.concatenate(bank.clips).astype(np.float32))
    cum_windows = tf.constant(np.cumsum(windows), tf.int64)
    first_window = tf.constant(np.concatenate([[0], np.cumsum(windows)[:-1]]), tf.int64)
    file_starts = tf.constant(starts, tf.int64)
    total_windows = int(windows.sum())
    keywords = _preload(records, kw_samples, use_source=True)

    def load(e, i):
        cid = tf.gather(table["clip_id"], i)
        # Per-clip random numbers from a fingerprint of (seed, epoch, clip id): reproducible and
        # independent of order and batch composition.
        tag = tf.strings.join([f"{seed}/", tf.strings.as_string(e), "/", cid])
        w = tf.strings.to_hash_bucket_fast(tf.strings.join([tag, "/noise"]), total_windows)
        start = tf.strings.to_hash_bucket_fast(tf.strings.join([tag, "/start"]), clip_samples - kw_samples + 1)
        f = tf.searchsorted(cum_windows, w[None], side="right")[0]
        offset = file_starts[f] + (w - first_window[f])
        noise = noise_all[offset : offset + clip_samples]
        kw = tf.cast(keywords[i], tf.float32) / 32768.0
        placed = tf.pad(kw, [[start, clip_samples - kw_samples - start]])
        audio = tf.ensure_shape(KEYWORD_WEIGHT * placed + NOISE_WEIGHT * noise, [clip_samples])
        t0 = tf.cast(start, tf.float32) / SAMPLE_RATE
        span = tf.where(tf.gather(table["silence"], i), -1.0, tf.stack([t0, t0 + kw_samples / SAMPLE_RATE]))
        return {"audio": audio, "label": tf.gather(table["label"], i), "clip_id": cid, "keyword_span": span}

    return load
