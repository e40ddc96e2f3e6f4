"""The stream folder format and its one reader: `labels.csv`, `stream.json`, the WAVs.

A stream folder (written by `kws_kd.data.stream.build_stream`, or made by hand)
holds `stream_NNN.wav` (16 kHz mono int16), `labels.csv` (file, start_s,
end_s, label, clip_id: one row per inserted clip) and `stream.json` (sample
rate, files, seed, mix, source, counts). Kept apart from the builder so the
readers (`kws_kd.stream_eval`, `kws_kd.stream_metrics`, `kws-kd eval
--stream`) depend on the format only, not on how streams are made.
`read_stream` also accepts a hand-made folder of WAVs + labels.csv without
stream.json.

numpy-only.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from kws_kd.audio import SAMPLE_RATE, audio_info
from kws_kd.errors import KwsKdError

STREAM_FORMAT = "kws-kd-stream"
STREAM_VERSION = 1
STREAM_JSON = "stream.json"
LABELS_CSV = "labels.csv"
LABEL_COLUMNS = ("file", "start_s", "end_s", "label", "clip_id")


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


def format_labels(events: list[StreamEvent]) -> str:
    """The labels.csv text of `events` (header row, then one row per event)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LABEL_COLUMNS)
    for e in events:
        w.writerow([e.file, f"{e.start_s:.6f}", f"{e.end_s:.6f}", e.label, e.clip_id])
    return buf.getvalue()


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
