"""FSD50K reader: the real release layout -> a multi-label `Manifest`.

Layout (as released on Zenodo)::

    FSD50K.dev_audio/<fname>.wav        FSD50K.eval_audio/<fname>.wav
    FSD50K.ground_truth/vocabulary.csv  (no header: index,label,mid)
    FSD50K.ground_truth/dev.csv         (fname,labels,mids,split; split is train|val)
    FSD50K.ground_truth/eval.csv        (fname,labels,mids)

Labels are the comma-separated `labels` column; a label that is not in the
vocabulary is an error naming the CSV line (a typo there would otherwise
silently become a missing class). Audio is 44.1 kHz of 0.3-30 s: it is
resampled to 16 kHz and zero-padded/cropped to `clip_seconds` (paper: 30 s) when
loaded (`load_fsd50k_clip`, and the tf.data pipeline), not here.

numpy-only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.errors import KwsKdError

GROUND_TRUTH = "FSD50K.ground_truth"
DEV_AUDIO = "FSD50K.dev_audio"
EVAL_AUDIO = "FSD50K.eval_audio"
_SPLIT_NAMES = {"train": "train", "val": "validation", "validation": "validation"}


def is_fsd50k(root: str | Path) -> bool:
    return (Path(root) / GROUND_TRUTH).is_dir()


def read_vocabulary(path: Path) -> list[str]:
    """Class names in index order from `vocabulary.csv`."""
    if not path.is_file():
        raise KwsKdError(f"{path}: missing FSD50K vocabulary")
    rows: dict[int, str] = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            try:
                rows[int(row[0])] = row[1].strip()
            except (ValueError, IndexError):
                raise KwsKdError(f"{path}:{lineno}: expected 'index,label,mid'") from None
    names = [rows[i] for i in sorted(rows)]
    if sorted(rows) != list(range(len(rows))):
        raise KwsKdError(f"{path}: class indices are not 0..{len(rows) - 1}")
    if len(set(names)) != len(names):
        raise KwsKdError(f"{path}: duplicate class names")
    return names


def read_fsd50k(root: str | Path, *, clip_seconds: float = 30.0) -> Manifest:
    """Read an FSD50K root; dev.csv's split column gives train/validation, eval.csv is test."""
    root = Path(root).resolve()
    gt = root / GROUND_TRUTH
    vocab = read_vocabulary(gt / "vocabulary.csv")
    known = set(vocab)
    clips: list[ClipRecord] = []
    for csv_name, audio_dir, fixed_split in (("dev.csv", DEV_AUDIO, None), ("eval.csv", EVAL_AUDIO, "test")):
        path = gt / csv_name
        if not path.is_file():
            raise KwsKdError(f"{path}: missing FSD50K ground-truth CSV")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"fname", "labels"} | ({"split"} if fixed_split is None else set())
            missing = need - set(reader.fieldnames or ())
            if missing:
                raise KwsKdError(f"{path}: missing columns {sorted(missing)}")
            for lineno, row in enumerate(reader, start=2):
                labels = tuple(x.strip() for x in row["labels"].split(",") if x.strip())
                if not labels:
                    raise KwsKdError(f"{path}:{lineno}: clip {row['fname']!r} has no labels")
                for lab in labels:
                    if lab not in known:
                        raise KwsKdError(f"{path}:{lineno}: label {lab!r} is not in vocabulary.csv")
                if fixed_split is None:
                    split = _SPLIT_NAMES.get(row["split"].strip())
                    if split is None:
                        raise KwsKdError(f"{path}:{lineno}: unknown split {row['split']!r} (expected train or val)")
                else:
                    split = fixed_split
                fname = row["fname"].strip()
                clips.append(
                    ClipRecord(
                        clip_id=f"{'dev' if fixed_split is None else 'eval'}/{fname}",
                        split=split,
                        labels=labels,
                        path=str(root / audio_dir / f"{fname}.wav"),
                    )
                )
    return Manifest(
        root=str(root),
        label_names=vocab,
        clips=clips,
        multi_label=True,
        clip_seconds=float(clip_seconds),
        info={"kind": "fsd50k", "clip_seconds": float(clip_seconds)},
    )


def multi_hot(labels: tuple[str, ...] | list[str], label_names: list[str]) -> np.ndarray:
    """float32 vector over `label_names` with 1 at each label."""
    index = {n: i for i, n in enumerate(label_names)}
    out = np.zeros(len(label_names), dtype=np.float32)
    for lab in labels:
        out[index[lab]] = 1.0
    return out


def load_fsd50k_clip(record: ClipRecord, clip_seconds: float = 30.0) -> np.ndarray:
    """Audio resampled to 16 kHz, zero-padded or cropped to `clip_seconds`."""
    from kws_kd.audio import SAMPLE_RATE, pad_or_crop, read_audio

    return pad_or_crop(read_audio(record.path), int(round(clip_seconds * SAMPLE_RATE)))
