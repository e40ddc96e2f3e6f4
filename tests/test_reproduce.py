"""benchmarks/reproduce_table{1,2}.py: the grid runs, reports mean ± std per cell and the teacher row."""

from __future__ import annotations

import json
import sys
from pathlib import Path


BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import protocol  # noqa: E402
import reproduce_table1  # noqa: E402
import reproduce_table2  # noqa: E402
from test_data_fsd50k import make_fsd  # noqa: E402


def _tiny_teacher(folder: Path, labels: list[str], multi_label: bool = False) -> Path:
    from export.teacher_model import build_teacher, save_teacher

    save_teacher(build_teacher("tiny", labels, multi_label=multi_label), folder)
    return folder


def test_table2_grid_reports_every_cell(tmp_path, sc_subset):
    from kws_kd.data.speech_commands import LABELS_12

    teacher = _tiny_teacher(tmp_path / "teacher", list(LABELS_12))
    report = tmp_path / "RESULTS.md"
    argv = ["--data", str(sc_subset), "--seconds", "2", "--students", "tc_resnet", "--lambdas", "0", "0.25",
            "--seeds", "0", "1", "--steps", "2", "--batch-size", "8", "--eval-every", "2",
            "--max-clips-per-label", "2", "--teacher", str(teacher), "--out", str(tmp_path / "out"),
            "--report", str(report)]
    assert reproduce_table2.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(result["rows"]) == 4  # 1 student x 2 lambdas x 2 seeds
    assert {(r["kd_lambda"], r["seed"]) for r in result["rows"]} == {(0.0, 0), (0.0, 1), (0.25, 0), (0.25, 1)}
    text = report.read_text()
    assert "| 2 s | teacher (wav2vec 2.0) |" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| 2 s | tc_resnet |")][:1]
    assert line.count("±") == 2
    accs = [100 * r["value"] for r in result["rows"] if r["kd_lambda"] == 0.0]
    mean = sum(accs) / 2
    assert f"{mean:.2f} ±" in line
    assert "reproduce_table2.py" in text and "CPU scale, 2 steps of batch 8" in text


def test_table1_grid_on_a_generated_fsd50k_tree(tmp_path):
    root = make_fsd(tmp_path / "fsd")
    from kws_kd.data.load import load_dataset

    labels = load_dataset(root).label_names
    teacher = _tiny_teacher(tmp_path / "teacher", labels, multi_label=True)
    report = tmp_path / "RESULTS_FSD50K.md"
    argv = ["--fsd50k", str(root), "--students", "tc_resnet", "--lambdas", "0", "--seeds", "0", "--steps", "1",
            "--batch-size", "2", "--eval-every", "1", "--teacher", str(teacher), "--out", str(tmp_path / "out"),
            "--report", str(report)]
    assert reproduce_table1.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    (row,) = result["rows"]
    assert row["metric"] == "mAP" and 0.0 <= row["value"] <= 1.0
    assert "| full | tc_resnet |" in report.read_text()


def test_mean_std_formats():
    assert protocol.mean_std([0.5, 0.7]) == "60.00 ± 14.14"
    assert protocol.mean_std([0.25], scale=1.0) == "0.2500 ± 0.0000"
    assert protocol.mean_std([]) == "-"
