"""Noisy Speech Commands: a 1 s keyword at a random offset inside D seconds of speech noise.

This is the paper's construction: a noise clip is cropped to exactly D seconds
at a random position, the (padded) 1 s keyword is placed at a uniformly random
offset, and the two are mixed as ``0.75 * keyword + 0.25 * noise``. Nothing
else is rescaled, so levels behave as in the paper. Since both inputs are in
[-1, 1] and the weights sum to 1, the mix cannot clip.

Every clip's randomness comes from ``(seed, clip_id)`` alone, so a clip is the
same whatever the order or number of worker processes, and validation/test are
reproducible from the seed. The same functions remix training clips freshly
each epoch in the pipeline (`fresh_mix`).

numpy-only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE, pad_or_crop, read_audio, to_int16
from kws_kd.data.manifest import ClipRecord, Manifest, read_manifest, write_manifest
from kws_kd.errors import KwsKdError

KEYWORD_WEIGHT = 0.75
NOISE_WEIGHT = 0.25
AUDIO_DIR = "audio"


def mix_keyword(
    keyword: np.ndarray,
    noise: np.ndarray,
    start_sample: int,
    keyword_weight: float = KEYWORD_WEIGHT,
    noise_weight: float = NOISE_WEIGHT,
) -> np.ndarray:
    """`noise_weight * noise`, plus `keyword_weight * keyword` added at `start_sample`.

    The output has the noise's length; the keyword must fit entirely inside it.
    """
    keyword = np.asarray(keyword, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    end = start_sample + len(keyword)
    if start_sample < 0 or end > len(noise):
        raise KwsKdError(
            f"keyword of {len(keyword)} samples at {start_sample} does not fit in {len(noise)} samples of noise"
        )
    out = noise * np.float32(noise_weight)
    out[start_sample:end] += np.float32(keyword_weight) * keyword
    return out


def crop_noise(noise: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random window of exactly `num_samples` from `noise`."""
    if len(noise) < num_samples:
        raise KwsKdError(f"noise of {len(noise)} samples is shorter than the {num_samples} samples asked for")
    start = int(rng.integers(0, len(noise) - num_samples + 1))
    return noise[start : start + num_samples]


def clip_rng(seed: int, clip_id: str, epoch: int = -1) -> np.random.Generator:
    """The random stream of one clip: depends only on (seed, clip_id[, epoch])."""
    key = int.from_bytes(hashlib.sha256(clip_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed & 0xFFFFFFFF, key, epoch + 1])


NOISE_SUFFIXES = (".wav", ".flac", ".ogg")


def noise_files(noise_dir: str | Path) -> list[Path]:
    """The audio files of a noise folder (recursive, sorted); one-line error when it is missing or has none."""
    noise_dir = Path(noise_dir)
    if not noise_dir.is_dir():
        raise KwsKdError(f"{noise_dir}: noise folder does not exist")
    paths = sorted(p for p in noise_dir.rglob("*") if p.is_file() and p.suffix.lower() in NOISE_SUFFIXES)
    if not paths:
        raise KwsKdError(f"{noise_dir}: noise folder has no audio files (.wav/.flac/.ogg)")
    return paths


@dataclass
class NoiseBank:
    """The noise clips of a folder, in memory, each at least `min_samples` long."""

    paths: list[Path]
    clips: list[np.ndarray]

    @classmethod
    def from_dir(cls, noise_dir: str | Path, min_samples: int) -> "NoiseBank":
        noise_dir = Path(noise_dir)
        paths = noise_files(noise_dir)
        clips = []
        for p in paths:
            audio = read_audio(p)
            if len(audio) < min_samples:
                raise KwsKdError(
                    f"{p}: noise clip is {len(audio) / SAMPLE_RATE:.2f} s, shorter than the "
                    f"{min_samples / SAMPLE_RATE:.2f} s clips to build"
                )
            clips.append(audio)
        return cls(paths, clips)

    def crop(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """A random window; files are chosen in proportion to how many windows they hold."""
        weights = np.array([len(c) - num_samples + 1 for c in self.clips], dtype=np.float64)
        i = int(rng.choice(len(self.clips), p=weights / weights.sum()))
        return crop_noise(self.clips[i], num_samples, rng)


def keyword_audio(record: ClipRecord, rng: np.random.Generator, background: list[np.ndarray], num_samples: int) -> np.ndarray:
    """The 1 s 'keyword' of a record: the clip padded/cropped, or a background crop for a pathless silence."""
    if record.path:
        return pad_or_crop(read_audio(record.path), num_samples)
    if background:
        noise = background[int(rng.integers(len(background)))]
        return crop_noise(noise, num_samples, rng) if len(noise) >= num_samples else pad_or_crop(noise, num_samples)
    return np.zeros(num_samples, dtype=np.float32)


def mix_record(
    record: ClipRecord,
    bank: NoiseBank,
    num_samples: int,
    rng: np.random.Generator,
    *,
    background: list[np.ndarray] | None = None,
    keyword_samples: int = SAMPLE_RATE,
    keyword_source: str | None = None,
) -> tuple[np.ndarray, int]:
    """Mix one record into noise; returns (audio, keyword start sample)."""
    src = ClipRecord(record.clip_id, record.split, record.labels, keyword_source or record.path)
    keyword = keyword_audio(src, rng, background or [], keyword_samples)
    noise = bank.crop(num_samples, rng)
    start = int(rng.integers(0, num_samples - keyword_samples + 1))
    return mix_keyword(keyword, noise, start), start


def is_silence(record: ClipRecord) -> bool:
    return "_silence_" in record.labels


def build_noisy(
    manifest: Manifest,
    noise_dir: str | Path,
    seconds: float,
    out_dir: str | Path,
    seed: int = 0,
    *,
    keyword_seconds: float = 1.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Write a Noisy Speech Commands folder: `audio/<clip_id>.wav` + `manifest.csv` + `dataset.json`.

    Clip ids are the source clip ids (so teacher stores key the same clips);
    `source` is the keyword file; the keyword span is in seconds (None for
    `_silence_`). The folder appears only when complete.
    """
    if manifest.multi_label:
        raise KwsKdError("the Noisy Speech Commands builder needs a single-label (Speech Commands) manifest")
    num_samples = int(round(seconds * SAMPLE_RATE))
    kw_samples = int(round(keyword_seconds * SAMPLE_RATE))
    if num_samples < kw_samples:
        raise KwsKdError(f"--seconds {seconds} is shorter than the {keyword_seconds} s keyword")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KwsKdError(f"{out_dir}: already exists (use --overwrite to replace it)")
    if not manifest.clips:
        raise KwsKdError(f"{manifest.root}: dataset has no clips")
    bank = NoiseBank.from_dir(noise_dir, num_samples)
    background = _background(manifest)
    import soundfile as sf

    records: list[ClipRecord] = []
    with atomic_dir(out_dir, overwrite=True) as tmp:
        made_dirs: set[Path] = set()
        for rec in tqdm(manifest.clips, desc=f"noisy {seconds:g}s", disable=None if progress else True, unit="clip"):
            rng = clip_rng(seed, rec.clip_id)
            audio, start = mix_record(rec, bank, num_samples, rng, background=background, keyword_samples=kw_samples)
            rel = Path(AUDIO_DIR) / f"{rec.clip_id}.wav"
            dest = tmp / rel
            if dest.parent not in made_dirs:
                dest.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(dest.parent)
            sf.write(str(dest), to_int16(audio), SAMPLE_RATE, subtype="PCM_16", format="WAV")
            span = (None, None) if is_silence(rec) else (start / SAMPLE_RATE, (start + kw_samples) / SAMPLE_RATE)
            records.append(
                ClipRecord(rec.clip_id, rec.split, rec.labels, str(dest), span[0], span[1], rec.path)
            )
        result = Manifest(
            root=str(tmp),
            label_names=list(manifest.label_names),
            clips=records,
            multi_label=False,
            clip_seconds=num_samples / SAMPLE_RATE,
            info={
                "kind": "noisy_speech_commands",
                "seconds": seconds,
                "seed": seed,
                "keyword_weight": KEYWORD_WEIGHT,
                "noise_weight": NOISE_WEIGHT,
                "noise_dir": str(Path(noise_dir).resolve()),
                "noise_files": [p.name for p in bank.paths],
                "source_root": manifest.root,
                "source_hash": manifest.content_hash(),
                "source_info": manifest.info,
            },
        )
        write_manifest(result, tmp)  # paths are stored relative to the folder
    return read_manifest(out_dir)


def _background(manifest: Manifest) -> list[np.ndarray]:
    """SC `_background_noise_` recordings, used as the 'keyword' of pathless silence records."""
    if not any(is_silence(c) and not c.path for c in manifest.clips):
        return []
    from kws_kd.data.speech_commands import background_noise_files

    return [read_audio(p) for p in background_noise_files(manifest.root)]
