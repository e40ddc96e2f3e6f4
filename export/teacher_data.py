"""Batches for fine-tuning the teacher, as numpy arrays (torch-free).

Two sources:

* `MixSource` ("fresh mixing"): every 1 s keyword lives in memory and is
  re-mixed at every draw into a new noise crop at a new random offset, with the
  data module's `mix_keyword` (0.75 keyword + 0.25 noise). With a few thousand
  keywords this is far more variety than a fixed set of noisy clips.
* `ClipSource`: the dataset's clips as they are (e.g. a materialised
  `kws-kd data noisy` folder, or FSD50K), cropped/padded to the asked length
  around the keyword span when the span is known.

All randomness comes from the generator passed in, so a resumed run that seeds
it from (seed, step) sees exactly the batches an unbroken run would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws_kd.audio import SAMPLE_RATE, pad_or_crop, read_audio
from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.errors import KwsKdError

KEYWORD_SAMPLES = SAMPLE_RATE
CACHE_BYTES = 2 << 30  # datasets up to 2 GiB of float32 audio are held in memory


@dataclass
class Batch:
    audio: np.ndarray  # float32 [B, samples]
    labels: np.ndarray  # int64 [B] (single-label) or float32 [B, C] (multi-label)
    spans: np.ndarray  # float32 [B, 2] keyword span in seconds, -1 where unknown
    clip_ids: list[str]


def _progress(items, desc: str, show: bool):
    return tqdm(items, desc=desc, disable=None if show else True, leave=False, unit="clip")


class ClipSource:
    """The dataset's own clips, cropped/padded to the asked length."""

    def __init__(self, records: list[ClipRecord], manifest: Manifest, *, progress: bool = True):
        if not records:
            raise KwsKdError(f"{manifest.root}: no clips in this split")
        self.records = records
        self.labels = manifest.encode_labels(records)
        estimate = len(records) * (manifest.clip_seconds or 30.0) * SAMPLE_RATE * 4
        self.audio = None  # read on demand for large datasets (FSD50K would not fit in memory)
        if estimate <= CACHE_BYTES:
            self.audio = [self._read(r) for r in _progress(records, "reading clips", progress)]

    @staticmethod
    def _read(rec: ClipRecord) -> np.ndarray:
        return read_audio(rec.path) if rec.path else np.zeros(SAMPLE_RATE, np.float32)

    def __len__(self) -> int:
        return len(self.records)

    def _window(self, i: int, num_samples: int, rng: np.random.Generator | None) -> tuple[np.ndarray, tuple[float, float]]:
        rec = self.records[i]
        audio = self.audio[i] if self.audio is not None else self._read(rec)
        span = (-1.0, -1.0) if rec.keyword_start is None else (rec.keyword_start, rec.keyword_end)
        if len(audio) <= num_samples:
            return pad_or_crop(audio, num_samples), span
        # Longer than asked: take a window that holds the keyword span when it is known.
        lo, hi = 0, len(audio) - num_samples
        if span[0] >= 0:
            s0, s1 = int(span[0] * SAMPLE_RATE), int(np.ceil(span[1] * SAMPLE_RATE))
            lo, hi = max(0, min(hi, s1 - num_samples)), min(hi, max(0, s0))
            hi = max(hi, lo)
        start = int(rng.integers(lo, hi + 1)) if rng is not None else (lo + hi) // 2
        if span[0] >= 0:
            span = (span[0] - start / SAMPLE_RATE, span[1] - start / SAMPLE_RATE)
        return audio[start : start + num_samples], span

    def make(self, indices: np.ndarray, num_samples: int, rng: np.random.Generator | None) -> Batch:
        pieces = [self._window(int(i), num_samples, rng) for i in indices]
        return Batch(
            audio=np.stack([p[0] for p in pieces]).astype(np.float32),
            labels=self.labels[indices],
            spans=np.array([p[1] for p in pieces], dtype=np.float32),
            clip_ids=[self.records[int(i)].clip_id for i in indices],
        )

    def sample(self, rng: np.random.Generator, batch_size: int, num_samples: int) -> Batch:
        return self.make(rng.integers(0, len(self), batch_size), num_samples, rng)


class MixSource:
    """1 s keywords re-mixed into fresh noise crops at fresh random offsets at every draw."""

    def __init__(self, records: list[ClipRecord], manifest: Manifest, noise: list[np.ndarray], *,
                 background: list[np.ndarray] | None = None, progress: bool = True):
        if not records:
            raise KwsKdError(f"{manifest.root}: no clips in this split")
        if not noise:
            raise KwsKdError("fresh mixing needs noise audio")
        self.records = records
        self.labels = manifest.encode_labels(records)
        self.noise = noise
        self.background = background or []
        self.silence = np.array(["_silence_" in r.labels for r in records])
        self.keywords = None  # [N, 16000] cache when it fits, else read on demand
        if len(records) * KEYWORD_SAMPLES * 4 <= CACHE_BYTES:
            self.keywords = np.stack([self._keyword(r) for r in _progress(records, "reading keywords", progress)])

    def keyword(self, i: int) -> np.ndarray:
        return self.keywords[i] if self.keywords is not None else self._keyword(self.records[i])

    def _keyword(self, rec: ClipRecord) -> np.ndarray:
        src = rec.source if rec.source and Path(rec.source).is_file() else rec.path
        if not src:
            return np.zeros(KEYWORD_SAMPLES, np.float32)  # pathless silence: filled from background per draw
        return pad_or_crop(read_audio(src), KEYWORD_SAMPLES)

    def __len__(self) -> int:
        return len(self.records)

    def _noise_crop(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        from kws_kd.data.noisy import crop_noise

        weights = np.array([max(len(n) - num_samples + 1, 0) for n in self.noise], dtype=np.float64)
        if weights.sum() <= 0:
            raise KwsKdError(f"every noise clip is shorter than {num_samples / SAMPLE_RATE:g} s")
        i = int(rng.choice(len(self.noise), p=weights / weights.sum()))
        return crop_noise(self.noise[i], num_samples, rng)

    def make(self, indices: np.ndarray, num_samples: int, rng: np.random.Generator) -> Batch:
        from kws_kd.data.noisy import crop_noise, mix_keyword

        if num_samples < KEYWORD_SAMPLES:
            raise KwsKdError(f"clips of {num_samples / SAMPLE_RATE:g} s cannot hold a 1 s keyword")
        audio = np.empty((len(indices), num_samples), dtype=np.float32)
        spans = np.full((len(indices), 2), -1.0, dtype=np.float32)
        for row, i in enumerate(indices):
            i = int(i)
            keyword = self.keyword(i)
            if self.silence[i] and not self.records[i].path and self.background:
                bg = self.background[int(rng.integers(len(self.background)))]
                keyword = crop_noise(bg, KEYWORD_SAMPLES, rng)
            noise = self._noise_crop(num_samples, rng)
            start = int(rng.integers(0, num_samples - KEYWORD_SAMPLES + 1))
            audio[row] = mix_keyword(keyword, noise, start)
            if not self.silence[i]:
                spans[row] = (start / SAMPLE_RATE, (start + KEYWORD_SAMPLES) / SAMPLE_RATE)
        return Batch(audio, self.labels[indices], spans, [self.records[int(i)].clip_id for i in indices])

    def sample(self, rng: np.random.Generator, batch_size: int, num_samples: int) -> Batch:
        return self.make(rng.integers(0, len(self), batch_size), num_samples, rng)


def fixed_batches(source, num_samples: int, batch_size: int, limit: int | None, seed: int):
    """A deterministic evaluation pass: the same clips, offsets and noise every call."""
    rng = np.random.default_rng([seed, 0xE7A1])
    n = len(source)
    order = rng.permutation(n)[: limit or n] if limit and limit < n else np.arange(n)
    for lo in range(0, len(order), batch_size):
        # one generator per clip: a clip's mix does not depend on the batch size
        parts = [source.make(order[j : j + 1], num_samples, np.random.default_rng([seed, 0xE7A2, int(order[j])]))
                 for j in range(lo, min(lo + batch_size, len(order)))]
        yield Batch(np.concatenate([b.audio for b in parts]), np.concatenate([b.labels for b in parts]),
                    np.concatenate([b.spans for b in parts]), [c for b in parts for c in b.clip_ids])


def babble_pool(manifest: Manifest, split: str, *, seconds: float = 30.0, count: int = 12, seed: int = 0,
                progress: bool = True) -> list[np.ndarray]:
    """Babble made in memory from the `_unknown_` talkers of one split (no keyword inside the noise).

    Keeping each split's noise to its own speakers means no validation/test voice
    is heard during training, not even as noise.
    """
    from kws_kd.data.babble import babble_sources, make_babble, trim_silence

    sources = babble_sources(manifest, words="unknown", split=split)
    if len(sources) < 2:
        sources = babble_sources(manifest, words="all", split=split)
    if len(sources) < 2:
        raise KwsKdError(f"{manifest.root}: too few {split} clips to make babble noise; pass --noise DIR")
    utts, speakers = [], []
    for path, spk in _progress(sources, f"babble ({split})", progress):
        u = trim_silence(read_audio(path))
        if len(u):
            utts.append(u)
            speakers.append(spk)
    rng = np.random.default_rng([seed, 0xBAB, len(split)])
    n = int(round(seconds * SAMPLE_RATE))
    return [make_babble(utts, n, rng, speakers=speakers) for _ in range(count)]


def noise_from_dir(noise_dir: str | Path, min_samples: int) -> list[np.ndarray]:
    from kws_kd.data.noisy import NoiseBank

    return list(NoiseBank.from_dir(noise_dir, min_samples).clips)


def background_noise(manifest: Manifest) -> list[np.ndarray]:
    """Speech Commands `_background_noise_` recordings (the 'keyword' of pathless silence records)."""
    if not any("_silence_" in c.labels and not c.path for c in manifest.clips):
        return []
    from kws_kd.data.speech_commands import background_noise_files

    return [read_audio(p) for p in background_noise_files(manifest.root)]
