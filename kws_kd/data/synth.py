"""Offline keyword dataset spoken by espeak-ng: Speech Commands layout, no downloads.

Why: the project must run end to end on a fresh machine with no dataset
download. espeak-ng (Debian) speaks all 35 Speech Commands words; varying the
voice (8 English accents x ~100 `+variant` voices), speed (120-220 wpm) and
pitch (20-80) gives many distinct "speakers".

Per clip: synthesise at 22.05 kHz -> trim silence at 0.1 % of peak (0.5 % cuts
onsets) -> normalise to a random -12..-1 dBFS peak -> resample to 16 kHz ->
centre-pad to 1 s. A clip over 0.95 s is re-spoken faster rather than cropped.

Each voice (accent+variant) is a speaker with an 8-hex id, so files are named
`<word>/<speaker>_nohash_<n>.wav`; `validation_list.txt`/`testing_list.txt` come
from the speaker-hash split (15 %/15 %), so the folder reads like the real
training archive. `_background_noise_/` holds babble of synthetic talkers
reading sentences.

numpy-only (runs espeak-ng as a subprocess).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE, pad_or_crop, peak_normalise, resample_audio, write_wav
from kws_kd.data.babble import make_babble
from kws_kd.data.manifest import Manifest
from kws_kd.data.speech_commands import (
    BACKGROUND,
    TESTING_LIST,
    VALIDATION_LIST,
    WORDS_35,
    read_speech_commands,
    speaker_hash_split,
)
from kws_kd.errors import KwsKdError

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
SPEED_RANGE = (120, 220)
PITCH_RANGE = (20, 80)
LEVEL_DBFS = (-12.0, -1.0)
TRIM_THRESHOLD = 0.001
MAX_SECONDS = 0.95
ESPEAK_RATE = 22050

# Sentences read by the synthetic babble talkers (written for this project).
SENTENCES = (
    "the morning train was late again so everyone waited on the cold platform",
    "please pass the bread and the butter to the person at the end of the table",
    "we painted the kitchen a pale shade of green last summer",
    "my neighbour keeps three old bicycles in the garden shed",
    "the meeting moved to thursday because half the team was travelling",
    "after the rain the streets smelled of wet stone and cut grass",
    "she bought a small lamp and a box of candles at the market",
    "nobody remembered where the spare keys had been hidden",
    "the children counted the boats sailing slowly across the harbour",
    "he poured the coffee and told a long story about his grandfather",
    "the library closes early on sundays during the winter months",
    "a crowd gathered near the fountain to listen to the street band",
    "turn the page carefully because the paper is very thin",
    "they planted tomatoes beans and onions in neat little rows",
    "the old clock in the hall stopped at a quarter past nine",
    "our flight was cancelled so we rented a car and drove through the night",
)


@dataclass(frozen=True)
class Utterance:
    """One espeak-ng rendering: the text and the voice settings."""

    text: str
    voice: str
    speed: int
    pitch: int
    level_dbfs: float


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise KwsKdError("espeak-ng not found on PATH; install it (Debian: apt-get install espeak-ng)")
    return exe


def list_variants() -> list[str]:
    """The `+variant` voice names espeak-ng offers (sorted)."""
    out = subprocess.run([espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.append(parts[4].split("/")[-1])
    if not names:
        raise KwsKdError("espeak-ng --voices=variant listed no voices")
    return sorted(set(names))


def all_voices() -> list[str]:
    """Every accent x variant, e.g. `en-gb-scotland+f3`."""
    return [f"{a}+{v}" for a in ACCENTS for v in list_variants()]


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Raw espeak-ng output as float32 at 22.05 kHz."""
    proc = subprocess.run(
        [espeak_binary(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
    )
    if proc.returncode != 0 or len(proc.stdout) < 44:
        msg = proc.stderr.decode(errors="replace").strip()[:160]
        raise KwsKdError(f"espeak-ng failed for voice {voice!r} and text {text!r}: {msg or 'no audio'}")
    audio, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if rate != ESPEAK_RATE:
        audio = resample_audio(audio, rate, ESPEAK_RATE)
    return audio


def trim(audio: np.ndarray, threshold: float = TRIM_THRESHOLD) -> np.ndarray:
    """Cut leading/trailing samples below `threshold` x peak."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) > threshold * peak)
    return audio[loud[0] : loud[-1] + 1]


def render_keyword(u: Utterance) -> np.ndarray:
    """One 1 s, 16 kHz keyword clip; re-spoken faster (not cropped) if it would exceed 0.95 s."""
    speed = u.speed
    for _ in range(8):
        audio = trim(speak(u.text, u.voice, speed, u.pitch))
        if len(audio) <= MAX_SECONDS * ESPEAK_RATE:
            break
        speed = int(speed * max(1.1, len(audio) / (MAX_SECONDS * ESPEAK_RATE)))
    if len(audio) == 0:
        raise KwsKdError(f"espeak-ng produced silence for {u.text!r} with voice {u.voice!r}")
    audio = resample_audio(peak_normalise(audio, u.level_dbfs), ESPEAK_RATE, SAMPLE_RATE)
    return pad_or_crop(audio, SAMPLE_RATE, centre=True)


def speaker_id(voice: str) -> str:
    """8-hex speaker id for a voice, so Speech Commands file naming and splits apply."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def plan_keywords(words: tuple[str, ...], per_word: int, voices: list[str], rng: np.random.Generator) -> list[Utterance]:
    plan = []
    for word in words:
        for _ in range(per_word):
            plan.append(
                Utterance(
                    text=word,
                    voice=voices[int(rng.integers(len(voices)))],
                    speed=int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
                    pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                    level_dbfs=float(rng.uniform(*LEVEL_DBFS)),
                )
            )
    return plan


def build_synth(
    out_dir: str | Path,
    *,
    per_word: int = 40,
    seed: int = 0,
    words: tuple[str, ...] = WORDS_35,
    babble_files: int = 6,
    babble_seconds: float = 30.0,
    validation_percent: float = 15.0,
    test_percent: float = 15.0,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Write the offline dataset to `out_dir` (atomically) and return its 12-label manifest."""
    if per_word < 1:
        raise KwsKdError(f"--per-word must be at least 1, got {per_word}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KwsKdError(f"{out_dir}: already exists (use --overwrite to replace it)")
    rng = np.random.default_rng([seed, 0x5E])
    voices = all_voices()
    plan = plan_keywords(tuple(words), per_word, voices, rng)
    with atomic_dir(out_dir, overwrite=True) as tmp:
        counters: dict[tuple[str, str], int] = {}
        rels = []
        for u in plan:
            spk = speaker_id(u.voice)
            n = counters.get((u.text, spk), 0)
            counters[(u.text, spk)] = n + 1
            rels.append(f"{u.text}/{spk}_nohash_{n}.wav")
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            clips = pool.map(render_keyword, plan)
            for rel, audio in tqdm(zip(rels, clips), total=len(plan), desc="synth", disable=None if progress else True, unit="clip"):
                write_wav(tmp / rel, audio)
        _write_lists(tmp, rels, validation_percent, test_percent)
        _write_babble(tmp / BACKGROUND, voices, babble_files, babble_seconds, rng, progress)
        (tmp / "README.txt").write_text(
            f"Synthetic Speech Commands-layout dataset made by `kws-kd data synth` (espeak-ng).\n"
            f"{len(plan)} clips: {len(words)} words x {per_word}; seed {seed}.\n"
        )
    return read_speech_commands(out_dir, labels="12", split_method="lists", seed=seed)


def _write_lists(root: Path, rels: list[str], val_pct: float, test_pct: float) -> None:
    counts: dict[str, int] = {}
    for r in rels:
        spk = r.split("/")[1].split("_nohash_")[0]
        counts[spk] = counts.get(spk, 0) + 1
    assign = speaker_hash_split(counts, val_pct, test_pct)
    val = [r for r in rels if assign[r.split("/")[1].split("_nohash_")[0]] == "validation"]
    test = [r for r in rels if assign[r.split("/")[1].split("_nohash_")[0]] == "test"]
    (root / VALIDATION_LIST).write_text("".join(f"{r}\n" for r in val))
    (root / TESTING_LIST).write_text("".join(f"{r}\n" for r in test))


def _write_babble(folder: Path, voices: list[str], files: int, seconds: float, rng: np.random.Generator, progress: bool) -> None:
    """Babble of synthetic talkers, each reading a sentence with its own voice settings."""
    if files <= 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    n_talkers = min(48, max(12, 8 * files))
    utts, speakers = [], []
    for i in tqdm(range(n_talkers), desc="synth babble talkers", disable=None if progress else True, leave=False):
        voice = voices[int(rng.integers(len(voices)))]
        text = SENTENCES[i % len(SENTENCES)]
        audio = trim(speak(text, voice, int(rng.integers(*SPEED_RANGE)), int(rng.integers(*PITCH_RANGE))))
        utts.append(resample_audio(audio, ESPEAK_RATE, SAMPLE_RATE))
        speakers.append(voice)
    n = int(round(seconds * SAMPLE_RATE))
    for i in range(files):
        write_wav(folder / f"babble_{i:03d}.wav", make_babble(utts, n, rng, speakers=speakers))
