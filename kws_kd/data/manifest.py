"""The dataset manifest: the one description of a dataset both sides agree on.

A manifest lists every clip with a stable `clip_id` (the key into the teacher
attention store), its split, its label(s), the audio path and, where known,
the keyword's span. Its `content_hash` identifies the dataset, so a teacher
store made for other data is refused instead of silently misused.

numpy-only: imported by the torch teacher and by the TF student pipeline.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from kws_kd.atomic import atomic_write_text
from kws_kd.audio import SAMPLE_RATE
from kws_kd.errors import KwsKdError
from kws_kd.jsonio import read_json_object

SPLITS = ("train", "validation", "test")
MANIFEST_CSV = "manifest.csv"
DATASET_JSON = "dataset.json"
MANIFEST_COLUMNS = ("clip_id", "split", "labels", "path", "keyword_start", "keyword_end", "source")


@dataclass(frozen=True)
class ClipRecord:
    """One clip. `path` is absolute; `labels` has one entry for single-label data.

    `keyword_start`/`keyword_end` are in seconds from the clip start (None when
    unknown). `source` is free-form provenance (e.g. the keyword file a noisy
    clip was mixed from), used for fresh re-mixing; it is not part of the hash.
    """

    clip_id: str
    split: str
    labels: tuple[str, ...]
    path: str
    keyword_start: float | None = None
    keyword_end: float | None = None
    source: str = ""

    @property
    def label(self) -> str:
        """The single label of a single-label clip."""
        return self.labels[0]


@dataclass
class Manifest:
    """A whole dataset: label vocabulary, clips, and what kind of task it is."""

    root: str
    label_names: list[str]
    clips: list[ClipRecord]
    multi_label: bool = False
    sample_rate: int = SAMPLE_RATE
    clip_seconds: float | None = None
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> list[ClipRecord]:
        if name not in SPLITS:
            raise KwsKdError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return [c for c in self.clips if c.split == name]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def label_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def encode_labels(self, records: Iterable[ClipRecord]) -> np.ndarray:
        """Targets of `records`: label indices int64 [N], or multi-hot float32 [N, C] for multi-label data."""
        index = self.label_index()
        records = list(records)
        try:
            if not self.multi_label:
                return np.array([index[r.label] for r in records], dtype=np.int64)
            out = np.zeros((len(records), self.num_labels), dtype=np.float32)
            for i, r in enumerate(records):
                out[i, [index[lab] for lab in r.labels]] = 1.0
            return out
        except KeyError as exc:
            raise KwsKdError(f"{self.root}: label {exc.args[0]!r} is not in the dataset's labels") from None

    def label_order(self, names: Iterable[str]) -> list[int]:
        """Dataset index of each of `names` (e.g. a teacher's label order); a name it lacks is a KwsKdError."""
        index = self.label_index()
        missing = [n for n in names if n not in index]
        if missing:
            raise KwsKdError(f"{self.root}: labels {missing[:5]} are not in the dataset's labels")
        return [index[n] for n in names]

    def content_hash(self) -> str:
        """SHA-256 over labels and (clip_id, split, labels, span): independent of where the folder lives."""
        h = hashlib.sha256()
        h.update(json.dumps({"labels": self.label_names, "multi_label": self.multi_label}).encode())
        for c in sorted(self.clips, key=lambda c: c.clip_id):
            span = "" if c.keyword_start is None else f"{c.keyword_start:.4f}-{c.keyword_end:.4f}"
            h.update(f"{c.clip_id}\t{c.split}\t{'|'.join(c.labels)}\t{span}\n".encode())
        return h.hexdigest()

    def counts(self) -> dict[str, dict[str, int]]:
        """Clips per split and label (a multi-label clip counts once per label)."""
        out: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        for c in self.clips:
            for lab in c.labels:
                out[c.split][lab] = out[c.split].get(lab, 0) + 1
        return out


def write_manifest(manifest: Manifest, folder: str | Path) -> None:
    """Write `manifest.csv` (paths relative to `folder`) and `dataset.json`, atomically."""
    folder = Path(folder)
    buf = []
    for c in manifest.clips:
        rel = Path(c.path)
        try:
            rel = rel.relative_to(folder)
        except ValueError:
            pass
        buf.append(
            [
                c.clip_id,
                c.split,
                "|".join(c.labels),
                str(rel),
                "" if c.keyword_start is None else f"{c.keyword_start:.6f}",
                "" if c.keyword_end is None else f"{c.keyword_end:.6f}",
                c.source,
            ]
        )
    sio = io.StringIO()
    writer = csv.writer(sio, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(buf)
    atomic_write_text(folder / MANIFEST_CSV, sio.getvalue())
    meta = {
        "labels": manifest.label_names,
        "multi_label": manifest.multi_label,
        "sample_rate": manifest.sample_rate,
        "clip_seconds": manifest.clip_seconds,
        "content_hash": manifest.content_hash(),
        "info": manifest.info,
    }
    atomic_write_text(folder / DATASET_JSON, json.dumps(meta, indent=2) + "\n")


def read_manifest(folder: str | Path) -> Manifest:
    """Read a folder written by `write_manifest` (e.g. `kws-kd data noisy` output)."""
    folder = Path(folder).resolve()
    csv_path, meta_path = folder / MANIFEST_CSV, folder / DATASET_JSON
    if not csv_path.is_file():
        raise KwsKdError(f"{csv_path}: missing; not a kws-kd dataset folder")
    meta = read_json_object(meta_path, "not a kws-kd dataset folder")
    labels = list(meta["labels"])
    known = set(labels)
    clips: list[ClipRecord] = []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise KwsKdError(f"{csv_path}: missing columns {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            labs = tuple(x for x in row["labels"].split("|") if x)
            unknown = [x for x in labs if x not in known]
            if unknown:
                raise KwsKdError(f"{csv_path}:{lineno}: label {unknown[0]!r} is not in the vocabulary of {meta_path.name}")
            if row["split"] not in SPLITS:
                raise KwsKdError(f"{csv_path}:{lineno}: unknown split {row['split']!r}")
            clips.append(
                ClipRecord(
                    clip_id=row["clip_id"],
                    split=row["split"],
                    labels=labs,
                    path=str(folder / row["path"]),
                    keyword_start=float(row["keyword_start"]) if row["keyword_start"] else None,
                    keyword_end=float(row["keyword_end"]) if row["keyword_end"] else None,
                    source=row["source"],
                )
            )
    return Manifest(
        root=str(folder),
        label_names=labels,
        clips=clips,
        multi_label=bool(meta.get("multi_label", False)),
        sample_rate=int(meta.get("sample_rate", SAMPLE_RATE)),
        clip_seconds=meta.get("clip_seconds"),
        info=meta.get("info", {}),
    )


def check_unique_ids(clips: Iterable[ClipRecord]) -> None:
    seen: set[str] = set()
    for c in clips:
        if c.clip_id in seen:
            raise KwsKdError(f"duplicate clip id {c.clip_id!r} ({c.path})")
        seen.add(c.clip_id)
