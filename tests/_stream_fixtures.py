"""Tiny generated keyword datasets and hand-made stream folders for the stream tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kws_kd.audio import write_wav
from kws_kd.data.manifest import ClipRecord, Manifest, write_manifest

SR = 16000
LABELS = ["_silence_", "_unknown_", "yes", "no"]  # the labels of the committed golden tiny .tflite files
FREQS = {"yes": 1000.0, "no": 2000.0, "_unknown_": 3000.0}


def word(label: str, rng: np.random.Generator, seconds: float = 0.5) -> np.ndarray:
    """A 'word': its label's tone plus clip-unique noise under a Hann envelope (so each clip has one position)."""
    t = np.arange(int(seconds * SR)) / SR
    x = 0.35 * np.sin(2 * np.pi * FREQS[label] * t + rng.uniform(0, 2 * np.pi)) + 0.15 * rng.uniform(-1, 1, len(t))
    return (x * np.hanning(len(t))).astype(np.float32)


def make_word_dataset(root: Path, *, test=(3, 3, 2), train_unknown: int = 4, background: bool = True) -> Manifest:
    """Test split: `test` = (yes, no, _unknown_) clips; train split: `_unknown_` clips for babble, one of each keyword."""
    rng = np.random.default_rng(7)
    clips = []
    plan = [("test", "yes", test[0]), ("test", "no", test[1]), ("test", "_unknown_", test[2]),
            ("train", "_unknown_", train_unknown), ("train", "yes", 1), ("train", "no", 1)]
    for split, label, count in plan:
        for k in range(count):
            path = root / split / f"{label.strip('_')}_{k}.wav"
            write_wav(path, word(label, rng))
            clips.append(ClipRecord(f"{split}/{label}_{k}", split, (label,), str(path)))
    if background:
        noise = 0.3 * np.random.default_rng(8).uniform(-1, 1, 5 * SR)
        write_wav(root / "_background_noise_" / "hiss.wav", noise.astype(np.float32))
    manifest = Manifest(root=str(root), label_names=list(LABELS), clips=clips, clip_seconds=0.5)
    write_manifest(manifest, root)
    return manifest


def write_stream(root: Path, files: dict[str, np.ndarray], rows: list[tuple], rate: int = SR) -> Path:
    """A hand-made stream folder: WAVs (float audio) and labels.csv rows (file, start_s, end_s, label)."""
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    for name, audio in files.items():
        sf.write(str(root / name), np.asarray(audio, np.float32), rate, subtype="PCM_16")
    lines = ["file,start_s,end_s,label"] + [",".join(str(x) for x in r) for r in rows]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root
