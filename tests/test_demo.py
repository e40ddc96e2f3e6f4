"""`kws-kd demo --quick`: the whole pipeline end to end, its table, and its stage cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kws_kd.cli.main import main
from kws_kd.demo import DemoSummary, format_table
from kws_kd.experiment import REFERENCE_TEACHER, _limit_per_label
from kws_kd.data.manifest import ClipRecord, Manifest


def _teacher(tmp_path_factory) -> Path:
    """The shipped reference teacher; a tiny random one only while none is shipped."""
    if (REFERENCE_TEACHER / "teacher.json").is_file():
        return REFERENCE_TEACHER
    from export.teacher_model import build_teacher, save_teacher

    from kws_kd.data.speech_commands import LABELS_12

    folder = tmp_path_factory.mktemp("teacher") / "tiny"
    save_teacher(build_teacher("tiny", list(LABELS_12)), folder)
    return folder


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    teacher = _teacher(tmp_path_factory)
    args = ["demo", "--quick", "--out", str(out)]
    if teacher != REFERENCE_TEACHER:
        args += ["--teacher", str(teacher)]
    assert main(args) == 0
    return out, args


def test_quick_demo_table_has_every_row(quick_demo):
    out, _ = quick_demo
    summary = json.loads((out / "summary.json").read_text())
    models = [(r["model"].split(" ")[0], r["kd_lambda"]) for r in summary["rows"]]
    assert models == [("teacher", None), ("tc_resnet", 0.0), ("tc_resnet", 0.25)]
    for row in summary["rows"]:
        assert 0.0 <= row["float_accuracy"] <= 1.0
        assert row["size_bytes"] > 0 and row["latency_ms"] > 0
        assert 0.0 <= row["mass_in_span"] <= 1.0
    for row in summary["rows"][1:]:
        assert 0.0 <= row["int8_accuracy"] <= 1.0
        frr = row["frr_at_1_fa_per_hour"]
        assert frr is None or 0.0 <= frr <= 1.0
    # the detection stage scored both twins on the same stream and drew them on one DET plot
    detection = json.loads(next((out / "stages").glob("detection-*/stream_eval_stream.json")).read_text())
    assert sorted(m["name"] for m in detection["models"]) == ["tc_resnet λ=0", "tc_resnet λ=0.25"]
    assert detection["keywords"] > 0 and all(m["kind"] == "tflite" for m in detection["models"])
    assert (out / "detection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "summary.md").read_text()
    assert table.count("\n| tc_resnet |") == 2 and "| teacher" in table
    png = out / "attention.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reuses_every_stage(quick_demo, capsys):
    out, args = quick_demo
    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "running" not in log and log.count(": cached") == len(before)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert after == before


def test_limit_per_label_is_deterministic_and_bounded():
    clips = [ClipRecord(f"{lab}/{i}", split, (lab,), f"/x/{lab}{i}.wav")
             for split in ("train", "validation", "test") for lab in ("a", "b") for i in range(5)]
    m = Manifest(root="/x", label_names=["a", "b"], clips=clips)
    one = _limit_per_label(m, 2, seed=3)
    two = _limit_per_label(m, 2, seed=3)
    assert [c.clip_id for c in one.clips] == [c.clip_id for c in two.clips]
    for split in ("train", "validation", "test"):
        got = one.split(split)
        assert sorted(c.label for c in got) == ["a", "a", "b", "b"]


def test_format_table_marks_missing_values():
    s = DemoSummary(rows=[{"model": "teacher", "kd_lambda": None, "float_accuracy": 0.5, "int8_accuracy": None,
                           "size_bytes": 2048, "latency_ms": 1.5, "mass_in_span": None, "ratio_to_chance": None,
                           "peak_in_span": None}])
    line = format_table(s).splitlines()[2]
    assert line == "| teacher | - | 50.0 | - | - | 2 | 1.50 | - | - | - |"  # no FRR @ 1 FA/h for the teacher


def test_demo_refuses_a_vanilla_lambda(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "o"), "--kd-lambda", "0"]) == 2
    assert "kd-lambda" in capsys.readouterr().err
