"""Babble noise: many talkers at once, made from speech we already have.

The paper's noise is AudioSet "speech babble"/"hubbub", which cannot be
downloaded here. Overlaying 6-8 talker streams (each a chain of utterances from
different speakers, each at a random gain) gives noise with the same property
that matters: it is speech-like everywhere, so a student cannot find the keyword
by simple energy detection. Sources are real Speech Commands clips (train-split
speakers only, so no validation/test voice leaks into training noise) or the
espeak-ng talkers of `synth.py`.

numpy-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE, peak_normalise, read_audio, write_wav
from kws_kd.data.manifest import Manifest
from kws_kd.errors import KwsKdError

SILENCE = "_silence_"
UNKNOWN = "_unknown_"


def trim_silence(audio: np.ndarray, threshold: float = 0.02, margin: int = 800) -> np.ndarray:
    """Drop leading/trailing samples below `threshold` x peak (keeping `margin` samples of context)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0.0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) >= threshold * peak)
    return audio[max(0, loud[0] - margin) : min(len(audio), loud[-1] + 1 + margin)]


def make_babble(
    utterances: Sequence[np.ndarray],
    num_samples: int,
    rng: np.random.Generator,
    *,
    speakers: Sequence[str] | None = None,
    talkers: tuple[int, int] = (6, 8),
    gain_db: tuple[float, float] = (-9.0, 0.0),
    peak_dbfs: float = -3.0,
) -> np.ndarray:
    """Overlay `talkers` streams of chained utterances; peak-normalise the sum to `peak_dbfs`.

    Each stream starts at a random offset into its chain, so streams do not all
    begin with an onset; consecutive utterances in a stream come from different
    speakers when `speakers` is given.
    """
    utts = [np.asarray(u, dtype=np.float32) for u in utterances if len(u) > 0]
    if not utts:
        raise KwsKdError("babble needs at least one non-silent utterance")
    lo, hi = talkers
    n_talkers = int(rng.integers(lo, hi + 1))
    out = np.zeros(num_samples, dtype=np.float32)
    for _ in range(n_talkers):
        stream = _chain(utts, speakers, num_samples, rng)
        gain = 10.0 ** (rng.uniform(*gain_db) / 20.0)
        # Normalise each talker first, so the random gains (not the source levels) set the mix.
        out += gain * peak_normalise(stream, 0.0)
    return peak_normalise(out, peak_dbfs)


def _chain(utts: list[np.ndarray], speakers: Sequence[str] | None, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    pieces, total, prev = [], 0, None
    # Build about a second beyond the target so the stream can start at a random offset.
    while total < num_samples + SAMPLE_RATE:
        i = int(rng.integers(len(utts)))
        if speakers is not None and prev is not None and len(set(speakers)) > 1:
            for _ in range(8):
                if speakers[i] != speakers[prev]:
                    break
                i = int(rng.integers(len(utts)))
        pieces.append(utts[i])
        total += len(utts[i])
        prev = i
    chain = np.concatenate(pieces)
    start = int(rng.integers(0, len(chain) - num_samples + 1))
    return chain[start : start + num_samples]


def babble_sources(manifest: Manifest, *, words: str = "unknown", split: str = "train") -> list[tuple[str, str]]:
    """(path, speaker) of the clips babble may be made from.

    `words="unknown"` takes only `_unknown_`-labelled clips (no keyword is ever
    spoken inside the noise); `"all"` takes every non-silence clip.
    """
    from kws_kd.data.speech_commands import speaker_of

    if words not in ("unknown", "all"):
        raise KwsKdError(f"babble words must be 'unknown' or 'all', got {words!r}")
    out = []
    for c in manifest.split(split):
        if not c.path or SILENCE in c.labels:
            continue
        if words == "unknown" and UNKNOWN not in c.labels:
            continue
        out.append((c.path, speaker_of(c.path)))
    return out


def build_babble(
    sources: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    num_files: int = 20,
    seconds: float = 30.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write `num_files` babble WAVs of `seconds` each into `out_dir` (atomically, as a folder)."""
    if len(sources) < 2:
        raise KwsKdError(f"babble needs clips from at least 2 utterances, got {len(sources)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KwsKdError(f"{out_dir}: already exists (use --overwrite to replace it)")
    utts, speakers = [], []
    for path, spk in tqdm(sources, desc="babble: reading", disable=None if progress else True, leave=False):
        u = trim_silence(read_audio(path))
        if len(u):
            utts.append(u)
            speakers.append(spk)
    rng = np.random.default_rng([seed, 0xBAB])
    n = int(round(seconds * SAMPLE_RATE))
    with atomic_dir(out_dir, overwrite=True) as tmp:
        for i in tqdm(range(num_files), desc="babble: writing", disable=None if progress else True, leave=False):
            write_wav(tmp / f"babble_{i:03d}.wav", make_babble(utts, n, rng, speakers=speakers))
    return sorted(out_dir.glob("babble_*.wav"))
