"""Shared data fixtures: the shared real-speech folder, and small generated WAV trees.

Kept to data fixtures only (other test files may use them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws_kd.data.shared import SC_SUBSET as SC_SUBSET_NAME
from kws_kd.data.shared import shared_data_dir

SHARED_DATA = shared_data_dir()


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, amp: float = 0.5, channels: int = 1) -> np.ndarray:
    """Write a sine WAV (int16); returns the float signal as written (mono)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    sf.write(str(path), data, rate, subtype="PCM_16")
    return x


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`<repo>/../shared/data` (or $KWS_KD_SHARED_DATA); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not found (set KWS_KD_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sc_subset(shared_data: Path) -> Path:
    """The shared real Speech Commands test-archive subset; skips when absent."""
    path = shared_data / SC_SUBSET_NAME
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


def make_sc_tree(
    root: Path,
    words: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed", "cat"),
    speakers: int = 12,
    per_speaker: int = 1,
    seconds: float = 1.0,
    lists: bool = True,
    background: bool = True,
) -> Path:
    """A tiny Speech Commands training-archive tree with deterministic per-speaker tones."""
    rng = np.random.default_rng(0)
    spk_ids = [f"{int(x):08x}" for x in rng.integers(0, 2**32, size=speakers)]
    val, test = [], []
    for wi, word in enumerate(words):
        for si, spk in enumerate(spk_ids):
            for n in range(per_speaker):
                rel = f"{word}/{spk}_nohash_{n}.wav"
                write_tone(root / rel, seconds, freq=200 + 30 * wi + 3 * si, amp=0.3)
                if si % 6 == 0:
                    val.append(rel)
                elif si % 6 == 1:
                    test.append(rel)
    if lists:
        (root / "validation_list.txt").write_text("\n".join(val) + "\n")
        (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    if background:
        write_tone(root / "_background_noise_" / "hum.wav", 3.0, freq=50, amp=0.2)
    return root


@pytest.fixture
def sc_tree(tmp_path: Path) -> Path:
    """A small generated Speech Commands tree (training-archive layout, with lists)."""
    return make_sc_tree(tmp_path / "sc")


def make_noise_dir(root: Path, seconds: float = 3.0, files: int = 2) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        x = (0.5 * rng.uniform(-1, 1, int(seconds * 16000))).astype(np.float32)
        sf.write(str(root / f"noise_{i}.wav"), x, 16000, subtype="PCM_16")
    return root


@pytest.fixture
def noise_dir(tmp_path: Path) -> Path:
    """Two 3 s white-noise WAVs."""
    return make_noise_dir(tmp_path / "noise")
