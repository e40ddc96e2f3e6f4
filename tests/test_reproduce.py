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
    argv = ["--data", str(sc_subset), "--seconds", "1", "2", "--students", "tc_resnet", "--lambdas", "0", "0.25",
            "--long-only", "tc_resnet",
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
    assert protocol.mean_std([0.25], scale=1.0) == "0.2500"  # one seed: no spread
    assert protocol.mean_std([]) == "-"


def test_findings_compare_the_kd_gap_between_lengths():
    """Per student: does the best lambda beat vanilla, and is the gap larger at the longest length?"""
    import argparse

    rows = []
    for seconds, gap in ((2.0, 0.01), (8.0, 0.05)):
        for lam, base in ((0.0, 0.50), (0.25, 0.50 + gap)):
            rows += [{"seconds": seconds, "model": "tc_resnet", "kd_lambda": lam, "seed": s, "value": base + d}
                     for s, d in ((0, -0.01), (1, 0.01))]
    rows += [{"seconds": 8.0, "model": "att_rnn", "kd_lambda": lam, "seed": 0, "value": v}
             for lam, v in ((0.0, 0.6), (0.25, 0.55))]  # trained at 8 s only (--long-only)
    args = argparse.Namespace(lambdas=[0.0, 0.25], students=["tc_resnet", "att_rnn"])
    out = protocol.findings({"rows": rows}, args, [2.0, 8.0])
    assert "2 s, tc_resnet: best λ=0.25 beats vanilla by +1.00 points" in out
    assert "8 s, tc_resnet: best λ=0.25 beats vanilla by +5.00 points" in out
    assert "8 s, att_rnn: best λ=0.25 does not beat vanilla (-5.00 points)" in out
    assert not any(f.startswith("2 s, att_rnn") for f in out)
    assert "tc_resnet: the KD gap is larger at 8 s (+5.00) than at 2 s (+1.00)" in out


def test_short_runs_get_the_short_recipe_and_full_runs_the_papers():
    from kws_kd.experiment import ExperimentOptions, training_recipe

    short = training_recipe(ExperimentOptions(steps=200), "tc_resnet")
    assert short == {"optimizer": "adam", "learning_rates": [0.002, 0.002, 0.0005],
                     "student_config": {"bn_momentum": 0.9}}
    assert training_recipe(ExperimentOptions(steps=200), "att_rnn")["student_config"] == {}
    assert training_recipe(ExperimentOptions(steps=20000), "tc_resnet") == {
        "optimizer": None, "learning_rates": None, "student_config": {}}
    explicit = training_recipe(ExperimentOptions(steps=20000, learning_rates=(0.01, 0.001)), "lstm_p")
    assert explicit["optimizer"] == "adam" and explicit["learning_rates"] == [0.01, 0.001]
