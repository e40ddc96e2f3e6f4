"""benchmarks/host_latency.py: streaming rows only for students that stream, timed hop by hop."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import host_latency  # noqa: E402


def test_streaming_mode_rows_and_table(tmp_path, capsys):
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    argv = ["--students", "tc_resnet", "lstm_p", "--seconds", "1", "--modes", "float32-streaming",
            "--threads", "1", "--runs", "3", "--warmup", "1", "--teachers", "--work", str(work), "--out", str(out),
            "--note", "test run"]
    assert host_latency.main(argv) == 0
    data = json.loads((out / "latency.json").read_text())
    rows = data["students"]
    # TC-ResNet cannot stream: no row, no error row; LSTM-P gets one, timed per hop.
    assert [(r["student"], r["mode"]) for r in rows] == [("lstm_p", "float32-streaming")]
    row = rows[0]
    path = work / "lstm_p_1s_float32-streaming.tflite"
    assert (path.with_suffix(".json")).exists()  # the sidecar that makes host_latency drive it hop by hop
    assert row["size_kib"] == round(path.stat().st_size / 1024, 1)
    assert 0 < row["hop_median_ms"] < row["median_ms"]  # a clip is 49 hops
    assert row["runs"] == 3 and data["meta"]["note"] == "test run"
    assert len(data["meta"]["load_average_at_end"]) == 3
    with open(out / "latency.csv") as f:
        assert float(next(csv.DictReader(f))["hop_median_ms"]) == pytest.approx(row["hop_median_ms"])
    capsys.readouterr()
    assert host_latency.main(["--markdown", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert f"| lstm_p | 1 s | float32-streaming ({row['hop_median_ms']:.3f} ms/hop) |" in table
    assert "test run; load average" in table and "tc_resnet" not in table
