"""Speech Commands v2 reader: real folders -> a `Manifest` with reproducible splits.

Two on-disk layouts are understood, as they come:

* the training archive: `<word>/<speaker>_nohash_<n>.wav`, `_background_noise_/`,
  `validation_list.txt` and `testing_list.txt`;
* the test archive (and the shared real subset cut from it): keyword folders,
  `_unknown_/<word>_<speaker>_nohash_<n>.wav.wav` (double extension), numbered
  `_silence_/` clips, no split lists.

Splits:

* ``lists``: the dataset's official lists (the standard split);
* ``filename-hash``: kws_streaming's rule (SHA-1 of the name before
  `_nohash_`, scaled to a percentage), reimplemented here;
* ``speaker-hash``: speakers ordered by a salted SHA-256 of their id and cut so
  the clip counts meet the requested percentages. Each speaker lands in exactly
  one split. The salt matters: the shared subset itself was cut with
  ``int(sha1(speaker)) % 10``, so reusing SHA-1 would correlate the two.

Labels: ``"12"`` (10 keywords + `_silence_` + `_unknown_`, kws_streaming's
10 % silence / 10 % unknown of the keyword count per split, sampled with `seed`)
or ``"35"`` (every word is its own label; no silence/unknown).

In the training-archive layout there are no silence clips: `_silence_` records
have an empty `path` and mean "1 s of digital silence" (kws_streaming does the
same and adds background noise at training time); `load_clip` returns zeros for
them and the Noisy builder uses a background-noise crop instead.

numpy-only.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np

from kws_kd.data.manifest import ClipRecord, Manifest, check_unique_ids
from kws_kd.errors import KwsKdError

KEYWORDS_10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
WORDS_35 = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off",
    "on", "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two",
    "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND = "_background_noise_"
LABELS_12 = (SILENCE, UNKNOWN) + KEYWORDS_10
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SPLIT_METHODS = ("auto", "lists", "filename-hash", "speaker-hash")
SPEAKER_SALT = "kws-kd/speaker-split/v1"
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # kws_streaming / TF speech tutorial constant
_NAME_RE = re.compile(r"^(?:(?P<word>[a-z]+)_)?(?P<speaker>[0-9a-f]{8})_nohash_(?P<n>\d+)")


def is_speech_commands(root: str | Path) -> bool:
    """True when `root` looks like either Speech Commands layout."""
    root = Path(root)
    if not root.is_dir():
        return False
    kw = sum((root / w).is_dir() for w in KEYWORDS_10)
    return kw >= 2 or (root / UNKNOWN).is_dir() or (root / VALIDATION_LIST).is_file()


def is_test_archive(root: str | Path) -> bool:
    """The test-archive layout has `_unknown_/` (and `_silence_/`) folders instead of word folders."""
    root = Path(root)
    return (root / UNKNOWN).is_dir() or (root / SILENCE).is_dir()


def clip_id_for(root: Path, path: Path) -> str:
    """Relative posix path with every trailing `.wav` removed (stable and unique)."""
    rel = path.relative_to(root).as_posix()
    while rel.lower().endswith(".wav"):
        rel = rel[:-4]
    return rel


def speaker_of(path: str | Path) -> str:
    """Speaker id (8 hex digits before `_nohash_`); files without one are their own 'speaker'."""
    name = Path(path).name
    m = _NAME_RE.match(name)
    return m.group("speaker") if m else f"file:{Path(path).parent.name}/{name}"


def filename_hash_split(path: str | Path, validation_percent: float, test_percent: float) -> str:
    """kws_streaming's split: SHA-1 of the file name up to `_nohash_`, as a percentage."""
    name = Path(path).name
    while name.lower().endswith(".wav"):
        name = name[:-4]
    hash_name = re.sub(r"_nohash_.*$", "", name)
    h = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    pct = (h % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if pct < validation_percent:
        return "validation"
    if pct < validation_percent + test_percent:
        return "test"
    return "train"


def speaker_hash_split(
    counts: dict[str, int],
    validation_percent: float,
    test_percent: float,
    salt: str = SPEAKER_SALT,
) -> dict[str, str]:
    """Assign each key (speaker) to one split so clip counts meet the percentages.

    Keys are ordered by SHA-256(salt:key); the first ones fill validation up to
    its share of clips, the next ones test, the rest train. The order depends
    only on the key, so the assignment is reproducible; the cut points depend on
    the clip counts, which keeps small datasets close to the requested sizes.
    """
    order = sorted(counts, key=lambda k: hashlib.sha256(f"{salt}:{k}".encode()).hexdigest())
    total = sum(counts.values())
    val_target = total * validation_percent / 100.0
    test_target = total * (validation_percent + test_percent) / 100.0
    out: dict[str, str] = {}
    cum = 0.0
    for key in order:
        # Put the key where its clips' midpoint falls: keeps each split within half a speaker of its target.
        mid = cum + counts[key] / 2.0
        out[key] = "validation" if mid < val_target else "test" if mid < test_target else "train"
        cum += counts[key]
    return out


def read_speech_commands(
    root: str | Path,
    *,
    labels: str = "12",
    split_method: str = "auto",
    validation_percent: float | None = None,
    test_percent: float | None = None,
    silence_percent: float = 10.0,
    unknown_percent: float = 10.0,
    seed: int = 0,
    keywords: tuple[str, ...] = KEYWORDS_10,
) -> Manifest:
    """Read a Speech Commands v2 folder (either layout) into a Manifest.

    `split_method="auto"` uses the official lists for the training archive and
    the speaker-hash split for the test-archive layout (which has no lists).
    Percentages default to 10/10 for filename-hash and 15/15 for speaker-hash.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise KwsKdError(f"{root}: no such Speech Commands folder")
    if labels not in ("12", "35"):
        raise KwsKdError(f"labels must be '12' or '35', got {labels!r}")
    if split_method not in SPLIT_METHODS:
        raise KwsKdError(f"unknown split method {split_method!r}; expected one of {', '.join(SPLIT_METHODS)}")
    test_archive = is_test_archive(root)
    if split_method == "auto":
        split_method = "speaker-hash" if test_archive else "lists"
    if validation_percent is None:
        validation_percent = 15.0 if split_method == "speaker-hash" else 10.0
    if test_percent is None:
        test_percent = 15.0 if split_method == "speaker-hash" else 10.0
    if validation_percent < 0 or test_percent < 0 or validation_percent + test_percent >= 100:
        raise KwsKdError(f"bad split percentages: validation {validation_percent}, test {test_percent}")

    files = _scan(root)  # list of (path, word or SILENCE)
    if not files:
        raise KwsKdError(f"{root}: no .wav clips found in word folders; not a Speech Commands folder")
    splits = _assign_splits(root, files, split_method, validation_percent, test_percent)

    rng = np.random.default_rng([seed, 0x5C])
    clips: list[ClipRecord] = []
    if labels == "35":
        unknown_words = sorted({w for _, w in files if w not in WORDS_35 and w != SILENCE})
        if unknown_words:
            raise KwsKdError(f"{root}: word {unknown_words[0]!r} is not one of the 35 Speech Commands v2 words")
        for path, word in files:
            if word == SILENCE:
                continue
            clips.append(ClipRecord(clip_id_for(root, path), splits[path], (word,), str(path)))
        label_names = list(WORDS_35)
    else:
        label_names = [SILENCE, UNKNOWN, *keywords]
        kwset = set(keywords)
        for split in ("train", "validation", "test"):
            in_split = [(p, w) for p, w in files if splits[p] == split]
            kw = [(p, w) for p, w in in_split if w in kwset]
            for p, w in kw:
                clips.append(ClipRecord(clip_id_for(root, p), split, (w,), str(p)))
            others = [p for p, w in in_split if w not in kwset and w != SILENCE]
            silences = [p for p, w in in_split if w == SILENCE]
            if test_archive:
                # The test archive already holds the 10 % / 10 % proportions: keep it as it is.
                chosen_unknown, n_placeholder = others, 0
            else:
                n_unknown = min(len(others), math.ceil(len(kw) * unknown_percent / 100.0))
                idx = rng.permutation(len(others))[:n_unknown] if others else []
                chosen_unknown = sorted(others[i] for i in idx)
                n_placeholder = math.ceil(len(kw) * silence_percent / 100.0)
            for p in chosen_unknown:
                clips.append(ClipRecord(clip_id_for(root, p), split, (UNKNOWN,), str(p)))
            for p in silences:
                clips.append(ClipRecord(clip_id_for(root, p), split, (SILENCE,), str(p)))
            for i in range(n_placeholder):
                clips.append(ClipRecord(f"{SILENCE}/{split}_{i:05d}", split, (SILENCE,), "", source="silence"))
    check_unique_ids(clips)
    return Manifest(
        root=str(root),
        label_names=label_names,
        clips=clips,
        multi_label=False,
        clip_seconds=1.0,
        info={
            "kind": "speech_commands",
            "layout": "test-archive" if test_archive else "training-archive",
            "labels": labels,
            "split_method": split_method,
            "validation_percent": validation_percent,
            "test_percent": test_percent,
            "seed": seed,
        },
    )


def background_noise_files(root: str | Path) -> list[Path]:
    """The long noise recordings in `<root>/_background_noise_/` (sorted; may be empty)."""
    folder = Path(root) / BACKGROUND
    return sorted(folder.glob("*.wav")) if folder.is_dir() else []


def load_clip(record: ClipRecord, num_samples: int | None = None) -> np.ndarray:
    """Audio of a record as float32; an empty path (silence placeholder) is zeros."""
    from kws_kd.audio import SAMPLE_RATE, pad_or_crop, read_audio

    if not record.path:
        return np.zeros(num_samples or SAMPLE_RATE, dtype=np.float32)
    audio = read_audio(record.path)
    return audio if num_samples is None else pad_or_crop(audio, num_samples)


def _scan(root: Path) -> list[tuple[Path, str]]:
    """(path, word) for every clip; `_unknown_` files take their word from the name prefix."""
    out: list[tuple[Path, str]] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name == BACKGROUND or d.name.startswith("."):
            continue
        for f in sorted(d.iterdir()):
            if not f.is_file() or not f.name.lower().endswith(".wav"):
                continue
            if d.name == UNKNOWN:
                m = _NAME_RE.match(f.name)
                if not m or not m.group("word"):
                    raise KwsKdError(f"{f}: expected <word>_<speaker>_nohash_<n>.wav in {UNKNOWN}/")
                out.append((f, m.group("word")))
            elif d.name == SILENCE:
                out.append((f, SILENCE))
            elif d.name.startswith("_"):
                continue
            else:
                out.append((f, d.name))
    return out


def _read_list(root: Path, name: str) -> set[Path]:
    path = root / name
    if not path.is_file():
        raise KwsKdError(
            f"{path}: split list missing; use split_method 'filename-hash' or 'speaker-hash' "
            "(CLI: --split-method) for a folder without official lists"
        )
    return {(root / line.strip()).resolve() for line in path.read_text().splitlines() if line.strip()}


def _assign_splits(
    root: Path, files: list[tuple[Path, str]], method: str, val_pct: float, test_pct: float
) -> dict[Path, str]:
    if method == "lists":
        val, test = _read_list(root, VALIDATION_LIST), _read_list(root, TESTING_LIST)
        return {p: "validation" if p in val else "test" if p in test else "train" for p, _ in files}
    if method == "filename-hash":
        return {p: filename_hash_split(p, val_pct, test_pct) for p, _ in files}
    # speaker-hash: speakers and speaker-less clips (numbered silence) are cut separately,
    # so each split also gets its share of silence.
    speakers: dict[str, int] = {}
    loose: dict[str, int] = {}
    for p, _ in files:
        key = speaker_of(p)
        bucket = loose if key.startswith("file:") else speakers
        bucket[key] = bucket.get(key, 0) + 1
    assign = speaker_hash_split(speakers, val_pct, test_pct)
    assign.update(speaker_hash_split(loose, val_pct, test_pct))
    return {p: assign[speaker_of(p)] for p, _ in files}
