"""Long test streams: a split's clips placed at known times in minutes of noise.

Clip accuracy says how often a model names a 1 s clip right; a deployed
keyword spotter instead listens to hours of audio and is judged by how many
keywords it misses (false rejections) at a fixed number of false alarms per
hour. This module builds that test audio, as TensorFlow's
`generate_streaming_test_wav.py` and MLPerf Tiny's streaming benchmark do:

* every keyword and `_unknown_` clip of one split (shuffled; reused only when
  the split runs out before the requested duration) is inserted at a known,
  non-overlapping time, with a random gap of `gap_seconds` between clips;
* under them runs a noise bed: babble (`kws_kd.data.babble`, made from the
  `_unknown_` words of ANOTHER split, train by default: other talkers, no
  keyword spoken in the noise) plus the dataset's `_background_noise_`
  recordings, half and half; `noise_dir` replaces the generated babble;
* the mix is the Noisy Speech Commands one (`kws_kd.data.noisy`):
  ``0.75 * clip + 0.25 * noise``, so levels compare with the clip datasets.

Output folder: `stream_NNN.wav` (16 kHz mono int16), `labels.csv` (file,
start_s, end_s, label, clip_id: one row per inserted clip) and `stream.json`
(sample rate, files, seed, mix, source, counts). `read_stream` is the one
reader, used by `kws_kd.stream_eval`; it also accepts a hand-made folder of
WAVs + labels.csv without stream.json.

This file builds; the folder format and its reader are
`kws_kd.data.stream_folder`, the noise bed `kws_kd.data.stream_noise` (both
re-exported here, so their names import from this module too).

numpy-only.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE, read_audio, to_int16
from kws_kd.data.babble import UNKNOWN
from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.data.noisy import KEYWORD_WEIGHT, NOISE_WEIGHT
from kws_kd.data.stream_folder import (
    LABEL_COLUMNS,
    LABELS_CSV,
    STREAM_FORMAT,
    STREAM_JSON,
    STREAM_VERSION,
    Stream,
    StreamEvent,
    StreamFile,
    format_labels,
    read_stream,
)
from kws_kd.data.stream_noise import (
    BABBLE_SHARE,
    FADE_SECONDS,
    MAX_BABBLE_UTTERANCES,
    PIECE_SECONDS,
    NoiseBed,
    chain_pieces,
    noise_bed,
)
from kws_kd.errors import KwsKdError

__all__ = [
    "BABBLE_SHARE", "DEFAULT_GAP_SECONDS", "FADE_SECONDS", "LABEL_COLUMNS", "LABELS_CSV", "MAX_BABBLE_UTTERANCES",
    "PIECE_SECONDS", "STREAM_FORMAT", "STREAM_JSON", "STREAM_VERSION", "NoiseBed", "Stream", "StreamEvent",
    "StreamFile", "build_stream", "chain_pieces", "clip_audio", "format_labels", "noise_bed",
    "read_stream", "stream_pool",
]

DEFAULT_GAP_SECONDS = (3.0, 6.0)  # >= 2 x the 1.5 s matching tolerance: a detection can belong to one clip only


def stream_pool(manifest: Manifest, split: str) -> list[ClipRecord]:
    """The clips a stream of `split` inserts: every keyword and `_unknown_` clip with audio (no `_silence_`)."""
    pool = [c for c in manifest.split(split) if c.path and (c.label == UNKNOWN or not c.label.startswith("_"))]
    if not pool:
        raise KwsKdError(f"{manifest.root}: the {split} split has no keyword or {UNKNOWN} clips to insert")
    return pool


def clip_audio(record: ClipRecord) -> tuple[np.ndarray, float, float]:
    """(audio, keyword start, keyword end) of a clip to insert; the span is relative to the clip start.

    A materialised noisy clip (`kws-kd data noisy`) names its clean keyword in
    `source`: that is inserted rather than seconds of its own noise. Otherwise
    the clip is inserted whole, labelled with its recorded keyword span or, when
    there is none (Speech Commands), its whole extent.
    """
    source = Path(record.source) if record.source else None
    if source is not None and source.suffix.lower() == ".wav" and source.is_file() and str(source) != record.path:
        audio = read_audio(source)
        return audio, 0.0, len(audio) / SAMPLE_RATE
    audio = read_audio(record.path)
    seconds = len(audio) / SAMPLE_RATE
    if record.keyword_start is not None and record.keyword_end is not None:
        return audio, max(0.0, record.keyword_start), min(seconds, record.keyword_end)
    return audio, 0.0, seconds


class _Pool:
    """Clips in a seeded shuffled order; reshuffled (and counted as reuse) when exhausted."""

    def __init__(self, clips: list[ClipRecord], rng: np.random.Generator):
        self.clips, self.rng = clips, rng
        self.order = list(rng.permutation(len(clips)))
        self.passes = 1
        self._cached: tuple[int, tuple] | None = None

    def peek(self) -> tuple[ClipRecord, tuple[np.ndarray, float, float]]:
        if not self.order:
            self.order = list(self.rng.permutation(len(self.clips)))
            self.passes += 1
        i = int(self.order[0])
        if self._cached is None or self._cached[0] != i:
            self._cached = (i, clip_audio(self.clips[i]))
        return self.clips[i], self._cached[1]

    def take(self) -> None:
        self.order.pop(0)


def _file_lengths(total_seconds: float, file_seconds: float) -> list[int]:
    """Samples per file: full files of `file_seconds`, the remainder in a last, shorter one."""
    total, per = int(round(total_seconds * SAMPLE_RATE)), int(round(file_seconds * SAMPLE_RATE))
    sizes = [per] * (total // per)
    if total % per >= SAMPLE_RATE:  # a remainder under 1 s is dropped rather than written as a stub file
        sizes.append(total % per)
    return sizes


def build_stream(
    manifest: Manifest,
    out_dir: str | Path,
    *,
    split: str = "test",
    total_minutes: float = 60.0,
    minutes_per_file: float = 5.0,
    gap_seconds: tuple[float, float] = DEFAULT_GAP_SECONDS,
    noise_dir: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Stream:
    """Write a stream folder (see the module docstring); it appears only when complete."""
    import soundfile as sf

    if manifest.multi_label:
        raise KwsKdError(f"{manifest.root}: streams are built from single-label keyword data, not multi-label")
    if not (total_minutes > 0 and minutes_per_file > 0):
        raise KwsKdError(f"--total-minutes and --minutes-per-file must be positive (got {total_minutes}, {minutes_per_file})")
    lo, hi = (float(g) for g in gap_seconds)
    if not (0 <= lo <= hi and math.isfinite(hi)):
        raise KwsKdError(f"--gap-seconds needs 0 <= MIN <= MAX, got {lo} {hi}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KwsKdError(f"{out_dir}: already exists (use --overwrite to replace it)")
    sizes = _file_lengths(total_minutes * 60.0, minutes_per_file * 60.0)
    if not sizes:
        raise KwsKdError(f"--total-minutes {total_minutes} gives less than one second of audio")
    pool = _Pool(stream_pool(manifest, split), np.random.default_rng([seed, 0x5713]))
    bed = noise_bed(manifest, split, noise_dir, np.random.default_rng([seed, 0xBED]))
    layout_rng = np.random.default_rng([seed, 0x6A9])
    events: list[StreamEvent] = []
    files_meta, used = [], set()
    with atomic_dir(out_dir, overwrite=True) as tmp:
        for i, n in enumerate(tqdm(sizes, desc="stream", unit="file", disable=None if progress else True)):
            name = f"stream_{i:03d}.wav"
            mix = NOISE_WEIGHT * bed.make(n, np.random.default_rng([seed, 0xBAB, i]))
            pos, placed = int(layout_rng.uniform(lo, hi) * SAMPLE_RATE), 0
            while True:
                record, (audio, k0, k1) = pool.peek()
                if pos + len(audio) + int(lo * SAMPLE_RATE) > n:
                    break  # the next clip does not fit with a gap after it: the file ends in noise
                pool.take()
                mix[pos : pos + len(audio)] += KEYWORD_WEIGHT * audio
                events.append(StreamEvent(name, round(pos / SAMPLE_RATE + k0, 6), round(pos / SAMPLE_RATE + k1, 6),
                                          record.label, record.clip_id))
                used.add(record.clip_id)
                placed += 1
                pos += len(audio) + int(layout_rng.uniform(lo, hi) * SAMPLE_RATE)
            sf.write(str(tmp / name), to_int16(mix), SAMPLE_RATE, subtype="PCM_16", format="WAV")
            files_meta.append({"name": name, "samples": n, "seconds": n / SAMPLE_RATE, "clips": placed})
        if not events:
            raise KwsKdError(f"files of {minutes_per_file:g} min cannot hold one clip with gaps of {lo:g}-{hi:g} s")
        (tmp / LABELS_CSV).write_text(format_labels(events), encoding="utf-8")
        info = {
            "format": STREAM_FORMAT,
            "version": STREAM_VERSION,
            "sample_rate": SAMPLE_RATE,
            "seed": seed,
            "files": files_meta,
            "total_seconds": sum(f["seconds"] for f in files_meta),
            "gap_seconds": [lo, hi],
            "mix": {"keyword_weight": KEYWORD_WEIGHT, "noise_weight": NOISE_WEIGHT,
                    "noise_bed": f"{BABBLE_SHARE:g} babble + {1 - BABBLE_SHARE:g} background" if bed.background
                    else "babble only (no _background_noise_ recordings found)"},
            **bed.info,
            "source": {"dataset": manifest.root, "split": split, "labels": list(manifest.label_names),
                       "manifest_hash": manifest.content_hash(), "kind": manifest.info.get("kind")},
            "counts": dict(sorted(Counter(e.label for e in events).items())),
            "clips_inserted": len(events),
            "distinct_clips": len(used),
            "pool_clips": len(pool.clips),
            "pool_passes": pool.passes,
        }
        (tmp / STREAM_JSON).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return read_stream(out_dir)
