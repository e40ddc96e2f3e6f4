"""Long test streams: a split's clips placed at known times in minutes of noise.

Clip accuracy says how often a model names a 1 s clip right; a deployed
keyword spotter instead listens to hours of audio and is judged by how many
keywords it misses (false rejections) at a fixed number of false alarms per
hour. This module builds that test audio, as TensorFlow's
`generate_streaming_test_wav.py` and MLPerf Tiny's streaming benchmark do:

* every keyword and `_unknown_` clip of one split (shuffled; reused only when
  the split runs out before the requested duration) is inserted at a known,
  non-overlapping time, with a random gap of `gap_seconds` between clips;
* under them runs a noise bed: babble (`kws_kd.data.babble`, made from the
  `_unknown_` words of ANOTHER split, train by default: other talkers, no
  keyword spoken in the noise) plus the dataset's `_background_noise_`
  recordings, half and half; `noise_dir` replaces the generated babble;
* the mix is the Noisy Speech Commands one (`kws_kd.data.noisy`):
  ``0.75 * clip + 0.25 * noise``, so levels compare with the clip datasets.

Output folder: `stream_NNN.wav` (16 kHz mono int16), `labels.csv` (file,
start_s, end_s, label, clip_id: one row per inserted clip) and `stream.json`
(sample rate, files, seed, mix, source, counts). `read_stream` is the one
reader, used by `kws_kd.stream_eval`; it also accepts a hand-made folder of
WAVs + labels.csv without stream.json.

numpy-only.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws_kd.atomic import atomic_dir
from kws_kd.audio import SAMPLE_RATE, audio_info, read_audio, to_int16
from kws_kd.data.babble import UNKNOWN, babble_sources, make_babble, trim_silence
from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.data.noisy import KEYWORD_WEIGHT, NOISE_WEIGHT
from kws_kd.errors import KwsKdError

STREAM_FORMAT = "kws-kd-stream"
STREAM_VERSION = 1
STREAM_JSON = "stream.json"
LABELS_CSV = "labels.csv"
LABEL_COLUMNS = ("file", "start_s", "end_s", "label", "clip_id")
DEFAULT_GAP_SECONDS = (3.0, 6.0)  # >= 2 x the 1.5 s matching tolerance: a detection can belong to one clip only
BABBLE_SHARE = 0.5  # noise bed = 0.5 babble + 0.5 background recordings
MAX_BABBLE_UTTERANCES = 1000  # enough talkers for babble; bounds memory on the full dataset
PIECE_SECONDS = (5.0, 20.0)  # background recordings are chained in pieces of this length
FADE_SECONDS = 0.02


@dataclass(frozen=True)
class StreamEvent:
    """One labelled clip: `label` spoken from `start_s` to `end_s` (seconds from the file start)."""

    file: str
    start_s: float
    end_s: float
    label: str
    clip_id: str = ""


@dataclass(frozen=True)
class StreamFile:
    path: Path
    samples: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate


@dataclass
class Stream:
    """A stream folder opened for reading: files, events, and stream.json (empty when absent)."""

    root: Path
    files: list[StreamFile]
    events: list[StreamEvent]
    info: dict

    @property
    def seconds(self) -> float:
        return sum(f.seconds for f in self.files)

    @property
    def sample_rate(self) -> int:
        return self.files[0].sample_rate

    def events_of(self, name: str) -> list[StreamEvent]:
        return [e for e in self.events if e.file == name]


# ---------------------------------------------------------------- building


def stream_pool(manifest: Manifest, split: str) -> list[ClipRecord]:
    """The clips a stream of `split` inserts: every keyword and `_unknown_` clip with audio (no `_silence_`)."""
    pool = [c for c in manifest.split(split) if c.path and (c.label == UNKNOWN or not c.label.startswith("_"))]
    if not pool:
        raise KwsKdError(f"{manifest.root}: the {split} split has no keyword or {UNKNOWN} clips to insert")
    return pool


def clip_audio(record: ClipRecord) -> tuple[np.ndarray, float, float]:
    """(audio, keyword start, keyword end) of a clip to insert; the span is relative to the clip start.

    A materialised noisy clip (`kws-kd data noisy`) names its clean keyword in
    `source`: that is inserted rather than seconds of its own noise. Otherwise
    the clip is inserted whole, labelled with its recorded keyword span or, when
    there is none (Speech Commands), its whole extent.
    """
    source = Path(record.source) if record.source else None
    if source is not None and source.suffix.lower() == ".wav" and source.is_file() and str(source) != record.path:
        audio = read_audio(source)
        return audio, 0.0, len(audio) / SAMPLE_RATE
    audio = read_audio(record.path)
    seconds = len(audio) / SAMPLE_RATE
    if record.keyword_start is not None and record.keyword_end is not None:
        return audio, max(0.0, record.keyword_start), min(seconds, record.keyword_end)
    return audio, 0.0, seconds


class _Pool:
    """Clips in a seeded shuffled order; reshuffled (and counted as reuse) when exhausted."""

    def __init__(self, clips: list[ClipRecord], rng: np.random.Generator):
        self.clips, self.rng = clips, rng
        self.order = list(rng.permutation(len(clips)))
        self.passes = 1
        self._cached: tuple[int, tuple] | None = None

    def peek(self) -> tuple[ClipRecord, tuple[np.ndarray, float, float]]:
        if not self.order:
            self.order = list(self.rng.permutation(len(self.clips)))
            self.passes += 1
        i = int(self.order[0])
        if self._cached is None or self._cached[0] != i:
            self._cached = (i, clip_audio(self.clips[i]))
        return self.clips[i], self._cached[1]

    def take(self) -> None:
        self.order.pop(0)


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
        if not noise_dir.is_dir():
            raise KwsKdError(f"{noise_dir}: noise folder does not exist")
        paths = sorted(p for p in noise_dir.rglob("*") if p.is_file() and p.suffix.lower() in (".wav", ".flac", ".ogg"))
        if not paths:
            raise KwsKdError(f"{noise_dir}: noise folder has no audio files (.wav/.flac/.ogg)")
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


def _file_lengths(total_seconds: float, file_seconds: float) -> list[int]:
    """Samples per file: full files of `file_seconds`, the remainder in a last, shorter one."""
    total, per = int(round(total_seconds * SAMPLE_RATE)), int(round(file_seconds * SAMPLE_RATE))
    sizes = [per] * (total // per)
    if total % per >= SAMPLE_RATE:  # a remainder under 1 s is dropped rather than written as a stub file
        sizes.append(total % per)
    return sizes


def build_stream(
    manifest: Manifest,
    out_dir: str | Path,
    *,
    split: str = "test",
    total_minutes: float = 60.0,
    minutes_per_file: float = 5.0,
    gap_seconds: tuple[float, float] = DEFAULT_GAP_SECONDS,
    noise_dir: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Stream:
    """Write a stream folder (see the module docstring); it appears only when complete."""
    import soundfile as sf

    if manifest.multi_label:
        raise KwsKdError(f"{manifest.root}: streams are built from single-label keyword data, not multi-label")
    if not (total_minutes > 0 and minutes_per_file > 0):
        raise KwsKdError(f"--total-minutes and --minutes-per-file must be positive (got {total_minutes}, {minutes_per_file})")
    lo, hi = (float(g) for g in gap_seconds)
    if not (0 <= lo <= hi and math.isfinite(hi)):
        raise KwsKdError(f"--gap-seconds needs 0 <= MIN <= MAX, got {lo} {hi}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise KwsKdError(f"{out_dir}: already exists (use --overwrite to replace it)")
    sizes = _file_lengths(total_minutes * 60.0, minutes_per_file * 60.0)
    if not sizes:
        raise KwsKdError(f"--total-minutes {total_minutes} gives less than one second of audio")
    pool = _Pool(stream_pool(manifest, split), np.random.default_rng([seed, 0x5713]))
    bed = noise_bed(manifest, split, noise_dir, np.random.default_rng([seed, 0xBED]))
    layout_rng = np.random.default_rng([seed, 0x6A9])
    events: list[StreamEvent] = []
    files_meta, used = [], set()
    with atomic_dir(out_dir, overwrite=True) as tmp:
        for i, n in enumerate(tqdm(sizes, desc="stream", unit="file", disable=None if progress else True)):
            name = f"stream_{i:03d}.wav"
            mix = NOISE_WEIGHT * bed.make(n, np.random.default_rng([seed, 0xBAB, i]))
            pos, placed = int(layout_rng.uniform(lo, hi) * SAMPLE_RATE), 0
            while True:
                record, (audio, k0, k1) = pool.peek()
                if pos + len(audio) + int(lo * SAMPLE_RATE) > n:
                    break  # the next clip does not fit with a gap after it: the file ends in noise
                pool.take()
                mix[pos : pos + len(audio)] += KEYWORD_WEIGHT * audio
                events.append(StreamEvent(name, round(pos / SAMPLE_RATE + k0, 6), round(pos / SAMPLE_RATE + k1, 6),
                                          record.label, record.clip_id))
                used.add(record.clip_id)
                placed += 1
                pos += len(audio) + int(layout_rng.uniform(lo, hi) * SAMPLE_RATE)
            sf.write(str(tmp / name), to_int16(mix), SAMPLE_RATE, subtype="PCM_16", format="WAV")
            files_meta.append({"name": name, "samples": n, "seconds": n / SAMPLE_RATE, "clips": placed})
        if not events:
            raise KwsKdError(f"files of {minutes_per_file:g} min cannot hold one clip with gaps of {lo:g}-{hi:g} s")
        (tmp / LABELS_CSV).write_text(format_labels(events), encoding="utf-8")
        info = {
            "format": STREAM_FORMAT,
            "version": STREAM_VERSION,
            "sample_rate": SAMPLE_RATE,
            "seed": seed,
            "files": files_meta,
            "total_seconds": sum(f["seconds"] for f in files_meta),
            "gap_seconds": [lo, hi],
            "mix": {"keyword_weight": KEYWORD_WEIGHT, "noise_weight": NOISE_WEIGHT,
                    "noise_bed": f"{BABBLE_SHARE:g} babble + {1 - BABBLE_SHARE:g} background" if bed.background
                    else "babble only (no _background_noise_ recordings found)"},
            **bed.info,
            "source": {"dataset": manifest.root, "split": split, "labels": list(manifest.label_names),
                       "manifest_hash": manifest.content_hash(), "kind": manifest.info.get("kind")},
            "counts": dict(sorted(Counter(e.label for e in events).items())),
            "clips_inserted": len(events),
            "distinct_clips": len(used),
            "pool_clips": len(pool.clips),
            "pool_passes": pool.passes,
        }
        (tmp / STREAM_JSON).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return read_stream(out_dir)


def format_labels(events: list[StreamEvent]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LABEL_COLUMNS)
    for e in events:
        w.writerow([e.file, f"{e.start_s:.6f}", f"{e.end_s:.6f}", e.label, e.clip_id])
    return buf.getvalue()


# ---------------------------------------------------------------- reading


def read_stream(folder: str | Path, sample_rate: int = SAMPLE_RATE) -> Stream:
    """Open and validate a stream folder; every problem is a one-line KwsKdError naming the file.

    Checks: labels.csv exists with the columns file,start_s,end_s,label; every
    WAV is mono at `sample_rate`; each row names a file of the stream and lies
    inside its audio.
    """
    root = Path(folder)
    if not root.is_dir():
        raise KwsKdError(f"{root}: no such stream folder")
    labels_path = root / LABELS_CSV
    if not labels_path.is_file():
        raise KwsKdError(f"{labels_path}: missing; a stream folder needs {LABELS_CSV} (build one with kws-kd data stream)")
    info: dict = {}
    if (root / STREAM_JSON).is_file():
        from kws_kd.jsonio import read_json_object

        info = read_json_object(root / STREAM_JSON, "")
        if info.get("format") != STREAM_FORMAT:
            raise KwsKdError(f"{root / STREAM_JSON}: not a kws-kd stream description (format is not {STREAM_FORMAT!r})")
        names = [str(f.get("name", "")) for f in info.get("files", []) if isinstance(f, dict)]
        if int(info.get("sample_rate", sample_rate)) != sample_rate:
            raise KwsKdError(f"{root / STREAM_JSON}: sample rate {info.get('sample_rate')} Hz; expected {sample_rate} Hz")
    else:
        names = sorted(p.name for p in root.glob("*.wav"))
    if not names:
        raise KwsKdError(f"{root}: no stream WAV files")
    files = []
    for name in names:
        path = root / name
        rate, channels, frames = audio_info(path)
        if rate != sample_rate:
            raise KwsKdError(f"{path}: sample rate is {rate} Hz; the stream must be {sample_rate} Hz")
        if channels != 1:
            raise KwsKdError(f"{path}: has {channels} channels; a stream must be mono")
        files.append(StreamFile(path, frames, rate))
    return Stream(root, files, _read_labels(labels_path, {f.path.name: f for f in files}), info)


def _read_labels(path: Path, files: dict[str, StreamFile]) -> list[StreamEvent]:
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise KwsKdError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise KwsKdError(f"{path}: empty; expected a header {','.join(LABEL_COLUMNS[:4])}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in LABEL_COLUMNS[:4] if c not in header]
    if missing:
        raise KwsKdError(f"{path}: missing column(s) {missing}; expected {','.join(LABEL_COLUMNS[:4])}[,clip_id]")
    col = {c: header.index(c) for c in header}
    events = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise KwsKdError(f"{path}: line {line} has {len(row)} fields; expected {len(header)}")
        name, label = row[col["file"]].strip(), row[col["label"]].strip()
        try:
            start, end = float(row[col["start_s"]]), float(row[col["end_s"]])
        except ValueError:
            raise KwsKdError(f"{path}: line {line}: start_s/end_s are not numbers") from None
        if name not in files:
            raise KwsKdError(f"{path}: line {line} names {name!r}, which is not a file of the stream")
        if not label:
            raise KwsKdError(f"{path}: line {line} has an empty label")
        seconds = files[name].seconds
        if not (math.isfinite(start) and math.isfinite(end) and 0.0 <= start < end <= seconds + 0.5 / files[name].sample_rate):
            raise KwsKdError(f"{path}: line {line}: {label} at {start:g}-{end:g} s lies outside {name} "
                             f"(0-{seconds:.3f} s) or ends before it starts")
        clip_id = row[col["clip_id"]].strip() if "clip_id" in col else ""
        events.append(StreamEvent(name, start, end, label, clip_id))
    return events
