"""The noise bed under a test stream: babble (or a noise folder) plus background recordings.

`kws_kd.data.stream.build_stream` lays its clips over this noise. The babble
is made from the `_unknown_` words of ANOTHER split than the stream's (train by
default: other talkers, no keyword spoken in the noise, `kws_kd.data.babble`);
`noise_dir` replaces it. The dataset's `_background_noise_` recordings are
chained in faded 5-20 s pieces and mixed in half and half. Kept apart from the
builder because it is its own recipe with its own knobs (shares, piece
lengths, the babble cap).

numpy-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_kd.audio import SAMPLE_RATE, read_audio
from kws_kd.data.babble import UNKNOWN, babble_sources, make_babble, trim_silence
from kws_kd.data.manifest import Manifest
from kws_kd.data.noisy import noise_files
from kws_kd.errors import KwsKdError

BABBLE_SHARE = 0.5  # noise bed = 0.5 babble + 0.5 background recordings
MAX_BABBLE_UTTERANCES = 1000  # enough talkers for babble; bounds memory on the full dataset
PIECE_SECONDS = (5.0, 20.0)  # background recordings are chained in pieces of this length
FADE_SECONDS = 0.02


def _fade(piece: np.ndarray) -> np.ndarray:
    n = min(len(piece) // 2, int(FADE_SECONDS * SAMPLE_RATE))
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        piece = piece.copy()
        piece[:n] *= ramp
        piece[-n:] *= ramp[::-1]
    return piece


def chain_pieces(recordings: list[np.ndarray], num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """`num_samples` of random pieces (5-20 s) of the recordings, end to end, each faded in and out (no clicks)."""
    out = np.zeros(num_samples, dtype=np.float32)
    pos = 0
    while pos < num_samples:
        rec = recordings[int(rng.integers(len(recordings)))]
        want = int(rng.uniform(*PIECE_SECONDS) * SAMPLE_RATE)
        length = min(want, len(rec), num_samples - pos)
        start = int(rng.integers(0, len(rec) - length + 1))
        out[pos : pos + length] = _fade(rec[start : start + length])
        pos += length
    return out


@dataclass
class NoiseBed:
    """Where the noise under the clips comes from; `make(n, rng)` gives n samples of it."""

    babble_utterances: list[np.ndarray]
    babble_speakers: list[str]
    noise_recordings: list[np.ndarray]  # --noise files (replace babble when given)
    background: list[np.ndarray]  # the dataset's _background_noise_ recordings
    info: dict

    def make(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        if self.noise_recordings:
            babble = chain_pieces(self.noise_recordings, num_samples, rng)
        else:
            babble = make_babble(self.babble_utterances, num_samples, rng, speakers=self.babble_speakers)
        if not self.background:
            return babble
        return BABBLE_SHARE * babble + (1.0 - BABBLE_SHARE) * chain_pieces(self.background, num_samples, rng)


def _babble_split(split: str) -> str:
    return "train" if split != "train" else "validation"


def noise_bed(manifest: Manifest, split: str, noise_dir: str | Path | None, rng: np.random.Generator) -> NoiseBed:
    """Babble (or `noise_dir`) plus the dataset's background recordings; see the module docstring."""
    from kws_kd.data.speech_commands import background_noise_files

    roots = [manifest.root, manifest.info.get("source_root")]  # a noisy build keeps its SC folder here
    background_files = next((files for r in roots if r for files in [background_noise_files(r)] if files), [])
    background = [a for a in (read_audio(p) for p in background_files) if len(a)]
    info: dict = {"background": [p.name for p in background_files]}
    if noise_dir is not None:
        noise_dir = Path(noise_dir)
        paths = noise_files(noise_dir)
        info["babble"] = {"from": str(noise_dir.resolve()), "files": [p.name for p in paths]}
        return NoiseBed([], [], [read_audio(p) for p in paths], background, info)
    other = _babble_split(split)
    sources = babble_sources(manifest, words="unknown", split=other)
    if len(sources) < 2:
        raise KwsKdError(
            f"{manifest.root}: the {other} split has {len(sources)} {UNKNOWN} clip(s); babble needs at least 2 "
            f"(pass --noise DIR, e.g. from `kws-kd data babble`)"
        )
    if len(sources) > MAX_BABBLE_UTTERANCES:
        keep = np.sort(rng.choice(len(sources), MAX_BABBLE_UTTERANCES, replace=False))
        sources = [sources[i] for i in keep]
    utts, speakers = [], []
    for path, speaker in sources:
        u = trim_silence(read_audio(path))
        if len(u):
            utts.append(u)
            speakers.append(speaker)
    info["babble"] = {"from": "generated", "split": other, "words": UNKNOWN, "utterances": len(utts),
                      "talkers": len(set(speakers))}
    return NoiseBed(utts, speakers, [], background, info)
