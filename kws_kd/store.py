"""The teacher attention store: the one file format between the torch teacher and the TF students.

A store is a folder:

    STORE/store.json                                   identity and metadata
    STORE/shard-<splits>-<i:05d>-of-<N:05d>.npz        clips of shard i of an N-way export

`store.json` says which dataset (manifest content hash), which teacher
(checkpoint hash and config) and which rollout target the vectors come from.
Every shard repeats the identity it was written for, so a shard copied in from
another export is caught on reading. Shards hold ragged per-clip vectors
(concatenated, with offsets) so clips of different lengths share one file.

The reader merges all shards into memory and fails with a one-line error on a
missing shard, a duplicate clip or a shard written for another dataset/teacher.
numpy only: read by the TF training pipeline, written by the torch exporter.
The format is described for users in docs/teacher_store.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from kws_kd.atomic import atomic_path, atomic_write_text
from kws_kd.errors import KwsKdError
from kws_kd.jsonio import read_json_object
from kws_kd.rollout import RolloutOptions, interpolate_attention

FORMAT = "kws-kd-teacher-store"
VERSION = 1
STORE_JSON = "store.json"
SPLIT_ORDER = ("train", "validation", "test")
_SHARD_RE = re.compile(r"^shard-(?P<splits>[a-z+]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.npz$")
# Keys of store.json that make two exports interchangeable; anything else is informative.
IDENTITY_KEYS = ("manifest_hash", "teacher_hash", "rollout", "labels", "multi_label")


def splits_key(splits: Iterable[str]) -> str:
    """Canonical name of a split selection, e.g. ("test", "train") -> "train+test"."""
    chosen = set(splits)
    unknown = chosen - set(SPLIT_ORDER)
    if unknown or not chosen:
        raise KwsKdError(f"bad split selection {sorted(chosen)}; choose from {', '.join(SPLIT_ORDER)}")
    return "+".join(s for s in SPLIT_ORDER if s in chosen)


def shard_file_name(splits: Iterable[str], shard_index: int, num_shards: int) -> str:
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise KwsKdError(f"shard index {shard_index} is out of range for {num_shards} shards")
    return f"shard-{splits_key(splits)}-{shard_index:05d}-of-{num_shards:05d}.npz"


def shard_of(clip_id: str, num_shards: int) -> int:
    """Which shard a clip belongs to: stable across runs and machines (not Python's salted hash)."""
    import zlib

    return zlib.crc32(clip_id.encode("utf-8")) % num_shards


def make_meta(
    *,
    manifest_hash: str,
    labels: Sequence[str],
    multi_label: bool,
    teacher_hash: str,
    teacher: dict,
    frame_rate: float,
    sample_rate: int,
    rollout: RolloutOptions,
    dataset: str = "",
) -> dict:
    """The content of store.json. `teacher` is free-form (config, source, pooling...)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "manifest_hash": manifest_hash,
        "labels": list(labels),
        "multi_label": bool(multi_label),
        "teacher_hash": teacher_hash,
        "teacher": teacher,
        "frame_rate": float(frame_rate),
        "sample_rate": int(sample_rate),
        "rollout": rollout.to_dict(),
        "dataset": dataset,
    }


def _identity(meta: dict) -> dict:
    return {k: meta.get(k) for k in IDENTITY_KEYS}


def _mismatch_message(where: str, ours: dict, theirs: dict, what_theirs: str) -> str:
    if ours.get("manifest_hash") != theirs.get("manifest_hash"):
        return (
            f"{where}: made for another dataset manifest (store {theirs.get('manifest_hash')}, "
            f"{what_theirs} {ours.get('manifest_hash')})"
        )
    if ours.get("teacher_hash") != theirs.get("teacher_hash"):
        return (
            f"{where}: made by another teacher checkpoint (store {theirs.get('teacher_hash')}, "
            f"{what_theirs} {ours.get('teacher_hash')})"
        )
    for key in ("rollout", "labels", "multi_label"):
        if ours.get(key) != theirs.get(key):
            return f"{where}: made with other {key} (store {theirs.get(key)}, {what_theirs} {ours.get(key)})"
    return f"{where}: metadata differs"


def read_store_json(path: str | Path) -> dict:
    path = Path(path)
    meta_path = path / STORE_JSON
    meta = read_json_object(meta_path, "not a teacher store")
    if meta.get("format") != FORMAT:
        raise KwsKdError(f"{meta_path}: not a teacher store (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise KwsKdError(f"{meta_path}: store version {meta.get('version')} is not supported (expected {VERSION})")
    return meta


def init_store(path: str | Path, meta: dict) -> Path:
    """Create STORE with `meta`, or check that an existing STORE was made for the same data, teacher and rollout.

    Safe to call from several shard processes at once: store.json is written
    atomically and all of them write the same identity.
    """
    path = Path(path)
    if check_compatible(path, meta):
        return path
    # Hidden names are other shard processes' temporary files (kws_kd.atomic): not foreign content.
    if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
        raise KwsKdError(f"{path}: folder is not empty and has no {STORE_JSON}; refusing to write a store into it")
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / STORE_JSON, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def check_compatible(path: str | Path, meta: dict) -> bool:
    """True if STORE exists and was made for the identity in `meta` (only IDENTITY_KEYS are
    needed, so an exporter can check before loading its model); False if there is no store
    yet; KwsKdError naming both hashes if it was made for other data/teacher/rollout."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise KwsKdError(f"{path}: exists and is not a folder")
    if not (path / STORE_JSON).is_file():
        return False
    existing = read_store_json(path)
    if _identity(existing) != _identity(meta):
        raise KwsKdError(_mismatch_message(str(path), meta, existing, "this export"))
    return True


def existing_exports(path: str | Path) -> dict[str, set[int]]:
    """{splits key: set of shard counts} of the shard files already in STORE."""
    out: dict[str, set[int]] = {}
    for f in Path(path).glob("shard-*.npz"):
        m = _SHARD_RE.match(f.name)
        if m:
            out.setdefault(m["splits"], set()).add(int(m["count"]))
    return out


def check_shard_layout(path: str | Path, splits: Iterable[str], num_shards: int) -> None:
    """Refuse an export whose shards would overlap earlier shards cut another way."""
    key = splits_key(splits)
    chosen = set(key.split("+"))
    for other_key, counts in existing_exports(path).items():
        overlap = chosen & set(other_key.split("+"))
        if not overlap:
            continue
        for count in counts:
            if other_key != key or count != num_shards:
                raise KwsKdError(
                    f"{path}: already holds split(s) {'+'.join(sorted(overlap))} from an export of "
                    f"'{other_key}' in {count} shard(s); delete those shard-{other_key}-*-of-{count:05d}.npz "
                    f"files or export with --splits {other_key.replace('+', ' ')} --num-shards {count}"
                )


def write_shard(
    path: str | Path,
    meta: dict,
    *,
    splits: Iterable[str],
    shard_index: int,
    num_shards: int,
    clip_ids: Sequence[str],
    clip_splits: Sequence[str],
    attentions: Sequence[np.ndarray],
    logits: np.ndarray,
) -> Path:
    """Write one shard file atomically (a crash leaves no partial shard)."""
    if not (len(clip_ids) == len(clip_splits) == len(attentions) == len(logits)):
        raise ValueError("clip_ids, clip_splits, attentions and logits must have the same length")
    path = Path(path)
    name = shard_file_name(splits, shard_index, num_shards)
    lengths = np.array([len(a) for a in attentions], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = (
        np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in attentions])
        if attentions
        else np.zeros(0, np.float32)
    )
    logits = np.asarray(logits, dtype=np.float32).reshape(len(clip_ids), len(meta["labels"]))
    shard_meta = dict(_identity(meta), splits=splits_key(splits), shard_index=shard_index, num_shards=num_shards)
    with atomic_path(path / name, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                meta=np.array(json.dumps(shard_meta, sort_keys=True)),
                clip_ids=np.array(list(clip_ids), dtype=str),
                splits=np.array(list(clip_splits), dtype=str),
                offsets=offsets,
                attention=flat,
                logits=logits,
            )
    return path / name


@dataclass
class _Shard:
    file: Path
    clip_ids: np.ndarray
    splits: np.ndarray
    offsets: np.ndarray
    attention: np.ndarray
    logits: np.ndarray


def _read_shard(file: Path, store_meta: dict) -> _Shard:
    try:
        with np.load(file, allow_pickle=False) as z:
            shard_meta = json.loads(str(z["meta"]))
            shard = _Shard(file, z["clip_ids"], z["splits"], z["offsets"], z["attention"], z["logits"])
    except (OSError, ValueError, KeyError) as exc:
        raise KwsKdError(f"{file}: unreadable shard ({exc})") from None
    if _identity(shard_meta) != _identity(store_meta):
        raise KwsKdError(_mismatch_message(str(file), shard_meta, store_meta, "shard"))
    n = len(shard.clip_ids)
    if len(shard.offsets) != n + 1 or shard.offsets[-1] != len(shard.attention) or len(shard.logits) != n:
        raise KwsKdError(f"{file}: inconsistent shard (offsets/attention/logits lengths disagree)")
    return shard


class TeacherStore:
    """Read-only view of a store folder, all shards merged. Open with `TeacherStore.open(path)`."""

    def __init__(self, path: Path, meta: dict, shards: list[_Shard]) -> None:
        self.path = path
        self.meta = meta
        self._shards = shards
        self._index: dict[str, tuple[int, int]] = {}
        for si, sh in enumerate(shards):
            for ci, cid in enumerate(sh.clip_ids.tolist()):
                if cid in self._index:
                    other = shards[self._index[cid][0]].file.name
                    raise KwsKdError(f"{path}: clip {cid!r} is in both {other} and {sh.file.name}; delete the stale shard")
                self._index[cid] = (si, ci)

    @classmethod
    def open(cls, path: str | Path) -> "TeacherStore":
        """Read store.json and every shard; error on a missing shard of any export."""
        path = Path(path)
        if not path.is_dir():
            raise KwsKdError(f"{path}: no such teacher store folder")
        meta = read_store_json(path)
        groups: dict[tuple[str, int], dict[int, Path]] = {}
        for f in sorted(path.glob("shard-*.npz")):
            m = _SHARD_RE.match(f.name)
            if not m:
                raise KwsKdError(f"{f}: unexpected file name in a teacher store")
            groups.setdefault((m["splits"], int(m["count"])), {})[int(m["index"])] = f
        shards: list[_Shard] = []
        for (key, count), files in sorted(groups.items()):
            missing = [i for i in range(count) if i not in files]
            if missing:
                name = shard_file_name(key.split("+"), missing[0], count)
                raise KwsKdError(
                    f"{path}: shard {missing[0]} of {count} for splits {key} is missing ({name}); "
                    f"{len(missing)} of {count} missing in all"
                )
            shards.extend(_read_shard(files[i], meta) for i in range(count))
        return cls(path, meta, shards)

    # -- identity -------------------------------------------------------------------
    @property
    def manifest_hash(self) -> str:
        return self.meta["manifest_hash"]

    @property
    def teacher_hash(self) -> str:
        return self.meta["teacher_hash"]

    @property
    def frame_rate(self) -> float:
        """Teacher frames per second (50 for wav2vec 2.0 at 16 kHz)."""
        return float(self.meta["frame_rate"])

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def multi_label(self) -> bool:
        return bool(self.meta["multi_label"])

    @property
    def rollout(self) -> RolloutOptions:
        return RolloutOptions.from_dict(self.meta["rollout"])

    def check_manifest(self, manifest, splits: Iterable[str] | None = None) -> None:
        """Refuse a manifest other than the one the store was made for; with `splits`, also
        require a vector for every clip of those splits."""
        theirs = manifest.content_hash()
        if theirs != self.manifest_hash:
            raise KwsKdError(
                f"{self.path}: teacher store was made for another dataset manifest "
                f"(store {self.manifest_hash}, data {theirs} at {manifest.root})"
            )
        for split in splits or ():
            absent = [c.clip_id for c in manifest.split(split) if c.clip_id not in self._index]
            if absent:
                raise KwsKdError(
                    f"{self.path}: no teacher attention for {len(absent)} {split} clip(s), e.g. {absent[0]!r}; "
                    f"export that split with `kws-kd teacher export --splits {split}`"
                )

    # -- contents -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._index

    def clip_ids(self, split: str | None = None) -> list[str]:
        """Clip ids in shard order, optionally of one split."""
        out = []
        for sh in self._shards:
            ids = sh.clip_ids.tolist()
            if split is None:
                out.extend(ids)
            else:
                out.extend(c for c, s in zip(ids, sh.splits.tolist()) if s == split)
        return out

    def _locate(self, clip_id: str) -> tuple[_Shard, int]:
        try:
            si, ci = self._index[clip_id]
        except KeyError:
            raise KwsKdError(f"{self.path}: clip {clip_id!r} is not in the teacher store") from None
        return self._shards[si], ci

    def split_of(self, clip_id: str) -> str:
        sh, ci = self._locate(clip_id)
        return str(sh.splits[ci])

    def attention(self, clip_id: str) -> np.ndarray:
        """The clip's attention vector over teacher frames (float32, sums to 1)."""
        sh, ci = self._locate(clip_id)
        return sh.attention[sh.offsets[ci] : sh.offsets[ci + 1]]

    def logits(self, clip_id: str) -> np.ndarray:
        sh, ci = self._locate(clip_id)
        return sh.logits[ci]

    def probabilities(self, clip_id: str) -> np.ndarray:
        """Softmax of the logits (sigmoid for a multi-label store)."""
        z = self.logits(clip_id).astype(np.float64)
        if self.multi_label:
            return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        e = np.exp(z - z.max())
        return (e / e.sum()).astype(np.float32)

    def attention_matrix(self, clip_ids: Sequence[str], length: int | None = None) -> np.ndarray:
        """[len(clip_ids), L] float32. With `length`, every vector is linearly resampled
        to `length` frames and renormalised (see `kws_kd.rollout.interpolate_attention`);
        without it all clips must have the same number of frames."""
        vectors = [self.attention(c) for c in clip_ids]
        if length is not None:
            return np.stack([interpolate_attention(v, length) for v in vectors]).astype(np.float32) if vectors else np.zeros((0, length), np.float32)
        lengths = {len(v) for v in vectors}
        if len(lengths) > 1:
            raise KwsKdError(f"{self.path}: clips have different frame counts {sorted(lengths)}; pass length= to resample")
        return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)

    def logits_matrix(self, clip_ids: Sequence[str]) -> np.ndarray:
        return np.stack([self.logits(c) for c in clip_ids]) if clip_ids else np.zeros((0, len(self.labels)), np.float32)
