"""The demo's detection column: reading a student's FRR @ 1 FA/h and the verdict note, on hand-made stage summaries."""

from pathlib import Path

from kws_kd.demo_detection import detection_verdict, frr_cell
from kws_kd.stages import StageResult


def _stage(frrs: dict) -> StageResult:
    models = {name: {"frr_at_1_fa_per_hour": f} for name, f in frrs.items()}
    return StageResult("detection", "k", Path("/nowhere"), {"models": models})


def test_frr_cell_reads_the_twin_by_model_and_lambda():
    stage = _stage({"crnn λ=0": 0.9, "crnn λ=0.25": None, "tc_resnet λ=0": 0.4})
    assert frr_cell(stage, "crnn", 0.0) == 0.9
    assert frr_cell(stage, "crnn", 0.25) is None  # no swept threshold reached 1 FA/h
    assert frr_cell(stage, "tc_resnet", 0.25) is None  # not scored at all
    assert frr_cell(None, "crnn", 0.0) is None  # --stream-minutes 0


def test_verdict_warns_only_when_every_student_misses_most_keywords():
    assert detection_verdict(_stage({"a": 0.5, "b": 0.99})) is None
    note = detection_verdict(_stage({"a": 0.51, "b": None}))
    assert note is not None and "no student here is a usable always-on detector" in note
