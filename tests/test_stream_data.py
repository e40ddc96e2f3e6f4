"""`kws-kd data stream`: long test streams with clips at known times (kws_kd.data.stream)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws_kd.cli.main import main
from kws_kd.data.manifest import read_manifest
from kws_kd.data.stream import build_stream, read_stream
from kws_kd.errors import KwsKdError

from _stream_fixtures import SR, make_word_dataset

SMALL = {"total_minutes": 0.5, "minutes_per_file": 0.25, "gap_seconds": (1.0, 2.0), "progress": False}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("words") / "data"
    make_word_dataset(root)
    return root


@pytest.fixture(scope="module")
def stream(dataset, tmp_path_factory):
    return build_stream(read_manifest(dataset), tmp_path_factory.mktemp("s") / "stream", seed=3, **SMALL)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".wav", ".csv")}


def test_layout_counts_and_metadata(stream, dataset):
    assert [f.path.name for f in stream.files] == ["stream_000.wav", "stream_001.wav"]
    assert all(f.samples == 15 * SR and f.sample_rate == SR for f in stream.files)
    info = stream.info
    assert info["format"] == "kws-kd-stream" and info["sample_rate"] == SR and info["seed"] == 3
    assert info["total_seconds"] == 30.0 and info["source"]["split"] == "test"
    assert info["mix"]["keyword_weight"] == 0.75 and info["mix"]["noise_weight"] == 0.25
    assert info["babble"]["split"] == "train" and info["background"] == ["hiss.wav"]
    counts = {}
    for e in stream.events:
        counts[e.label] = counts.get(e.label, 0) + 1
        assert e.clip_id.startswith("test/")  # only the stream's split is inserted
    assert info["counts"] == dict(sorted(counts.items())) and set(counts) == {"yes", "no", "_unknown_"}
    assert sum(f["clips"] for f in info["files"]) == len(stream.events) == info["clips_inserted"]
    assert info["pool_clips"] == 8 and info["pool_passes"] >= 2  # 30 s holds more clips than the split has


def test_clips_do_not_overlap_and_keep_the_gap(stream):
    for f in stream.files:
        ev = sorted(stream.events_of(f.path.name), key=lambda e: e.start_s)
        assert ev and ev[0].start_s >= 1.0 - 1e-6 and ev[-1].end_s <= f.seconds - 1.0 + 1e-6
        for a, b in zip(ev, ev[1:]):
            assert b.start_s - a.end_s >= 1.0 - 1e-6


def test_labelled_times_hold_the_inserted_clip(stream, dataset):
    """Each row's samples are 0.75 x its source clip plus quiet noise: best aligned exactly at the labelled start."""
    m = read_manifest(dataset)
    source = {c.clip_id: c.path for c in m.clips}
    audio = {f.path.name: sf.read(str(f.path), dtype="float32")[0] for f in stream.files}
    for e in stream.events:
        clip = sf.read(source[e.clip_id], dtype="float32")[0]
        x = audio[e.file]
        s0 = int(round(e.start_s * SR))
        assert round((e.end_s - e.start_s) * SR) == len(clip)
        lags = range(-400, 401, 4)
        corr = [float(np.dot(x[s0 + d : s0 + d + len(clip)], clip)) for d in lags]
        assert list(lags)[int(np.argmax(corr))] == 0
        seg = x[s0 : s0 + len(clip)]
        residual = seg - 0.75 * clip  # what remains is the 0.25-weighted noise bed
        assert np.corrcoef(seg, clip)[0, 1] > 0.7
        assert np.sqrt(np.mean(residual**2)) < 0.5 * np.sqrt(np.mean((0.75 * clip) ** 2))


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    m = read_manifest(dataset)
    a = build_stream(m, tmp_path / "a", seed=5, **SMALL)
    b = build_stream(m, tmp_path / "b", seed=5, **SMALL)
    c = build_stream(m, tmp_path / "c", seed=6, **SMALL)
    assert _bytes(a.root) == _bytes(b.root)
    assert _bytes(a.root) != _bytes(c.root)
    assert [(e.start_s, e.clip_id) for e in a.events] != [(e.start_s, e.clip_id) for e in c.events]


def test_labels_csv_and_stream_json_on_disk(stream):
    rows = list(csv.DictReader((stream.root / "labels.csv").open()))
    assert list(rows[0]) == ["file", "start_s", "end_s", "label", "clip_id"] and len(rows) == len(stream.events)
    info = json.loads((stream.root / "stream.json").read_text())
    assert [f["name"] for f in info["files"]] == [f.path.name for f in stream.files]
    assert not list(stream.root.parent.glob(".stream.*"))  # no temp folder left behind


def test_noise_dir_replaces_babble(dataset, tmp_path, noise_dir):
    s = build_stream(read_manifest(dataset), tmp_path / "n", seed=1, noise_dir=noise_dir, **SMALL)
    assert s.info["babble"]["files"] == ["noise_0.wav", "noise_1.wav"]


def test_cli_builds_and_refuses_to_overwrite(dataset, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["data", "stream", "--data", str(dataset), "--out", str(out), "--total-minutes", "0.4",
            "--minutes-per-file", "0.2", "--gap-seconds", "1", "2", "--seed", "2"]
    assert main(args) == 0
    assert "wrote 2 files, 0.4 min" in capsys.readouterr().out
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and len(err.splitlines()) == 1


def test_split_without_clips_or_babble_is_a_one_line_error(tmp_path):
    m = make_word_dataset(tmp_path / "d", train_unknown=0)
    with pytest.raises(KwsKdError, match="babble needs at least 2"):
        build_stream(m, tmp_path / "x", **SMALL)
    with pytest.raises(KwsKdError, match="the validation split has no keyword"):
        build_stream(m, tmp_path / "y", split="validation", **SMALL)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_reader_accepts_a_hand_made_folder_without_stream_json(stream, tmp_path):
    import shutil

    copy = tmp_path / "hand"
    shutil.copytree(stream.root, copy)
    (copy / "stream.json").unlink()
    again = read_stream(copy)
    assert [f.samples for f in again.files] == [f.samples for f in stream.files]
    assert [(e.file, e.label) for e in again.events] == [(e.file, e.label) for e in stream.events]
