"""`kws-kd eval` and the metrics behind it, against independent numpy computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kws_kd.cli.main import main
from kws_kd.evaluate import classification_report, evaluate_run, span_mass
from kws_kd.metrics import average_precision

from _train_fixtures import make_store, make_tone_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_matches_loop_confusion_matrix():
    rng = np.random.default_rng(4)
    n, c = 200, 5
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[y] * (rng.random(n) < 0.6)[:, None]
    rep = classification_report(logits, y, [f"l{i}" for i in range(c)], multi_label=False)
    cm = np.zeros((c, c), int)
    for t, row in zip(y, logits):
        best = max(range(c), key=lambda j: row[j])
        cm[t][best] += 1
    assert rep["confusion_matrix"] == cm.tolist()
    assert rep["accuracy"] == pytest.approx(np.trace(cm) / n)
    for j in range(c):
        pc = rep["per_class"][f"l{j}"]
        assert pc["support"] == cm[j].sum()
        assert pc["recall"] == pytest.approx(cm[j, j] / cm[j].sum())
        assert pc["precision"] == pytest.approx(cm[j, j] / cm[:, j].sum())


def test_average_precision_by_hand():
    # ranking: pos, neg, pos, neg, pos -> precisions at positives 1/1, 2/3, 3/5
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    targets = np.array([1, 0, 1, 0, 1])
    assert average_precision(scores, targets) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    y = np.stack([targets, 1 - targets], axis=1).astype(np.float32)
    rep = classification_report(np.stack([scores, -scores], axis=1), y, ["a", "b"], multi_label=True)
    ap_b = average_precision(-scores, 1 - targets)  # ranking neg-first: positives at ranks 2 and 4 -> (1/2 + 2/4)/2
    assert ap_b == pytest.approx(0.5)
    assert rep["mAP"] == pytest.approx(((1 + 2 / 3 + 3 / 5) / 3 + 0.5) / 2)


def test_span_mass_by_hand():
    # 4 steps over 2 s (0.5 s each); span 0.5-1.25 s covers step 1 fully and half of step 2
    att = np.array([[0.1, 0.4, 0.4, 0.1], [0.25, 0.25, 0.25, 0.25]])
    spans = np.array([[0.5, 1.25], [-1, -1]])
    out = span_mass(att, spans, 2.0)
    assert out["clips"] == 1
    assert out["mass_in_span"] == pytest.approx(0.4 + 0.2)
    assert out["chance"] == pytest.approx(0.75 / 2.0)
    assert out["peak_in_span"] == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kws_kd.train import TrainOptions, train

    root = tmp_path_factory.mktemp("ev")
    manifest = make_tone_dataset(root / "data")
    make_store(root / "store", manifest)
    opts = TrainOptions(
        model="tc_resnet", data=str(root / "data"), out=str(root / "run"), teacher_store=str(root / "store"),
        kd_lambda=0.25, steps=2, batch_size=8, eval_every=2, seed=1,
    )
    train(opts, progress=False, evaluate_test=False)
    return root, manifest


def _keras_predictions(run_dir: Path, manifest):
    """Independent path: read the WAVs with numpy, run the rebuilt stripped model, argmax."""
    from kws_kd.audio import pad_or_crop, read_audio
    from kws_kd.run import load_run

    run = load_run(run_dir)
    model = run.build_model(strip=True)
    clips = manifest.split("test")
    audio = np.stack([pad_or_crop(read_audio(c.path), run.clip_samples()) for c in clips])
    logits = model.predict(audio, verbose=0, batch_size=len(audio))
    y = np.array([manifest.label_names.index(c.label) for c in clips])
    return logits, y


def test_eval_run_matches_independent_confusion_matrix(trained):
    root, manifest = trained
    report = evaluate_run(root / "run")
    logits, y = _keras_predictions(root / "run", manifest)
    pred = logits.argmax(axis=1)
    cm = np.zeros((3, 3), int)
    for t, p in zip(y, pred):
        cm[t, p] += 1
    assert report["confusion_matrix"] == cm.tolist()
    assert report["accuracy"] == pytest.approx((pred == y).mean())
    png = Path(report["confusion_png"])
    assert png.read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((root / "run" / "eval_test.json").read_text())
    assert saved["confusion_matrix"] == cm.tolist()


def test_eval_cli_and_attention_in_span(trained, capsys):
    root, _ = trained
    assert main(["eval", "--run", str(root / "run"), "--attention-in-span", "--out-dir", str(root / "evout")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accuracy: ") and "attention in keyword span" in out
    span = json.loads(out.split("attention in keyword span: ")[1].splitlines()[0])
    assert 0 <= span["mass_in_span"] <= 1 and span["clips"] == 12
    assert (root / "evout" / "confusion_test.png").is_file()


def test_eval_missing_run_is_one_line_error(tmp_path, capsys):
    assert main(["eval", "--run", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_plot_attention_cli(trained, capsys):
    root, manifest = trained
    cid = manifest.split("test")[0].clip_id
    out = root / "fig.png"
    assert main(["plot-attention", "--run", str(root / "run"), "--teacher-store", str(root / "store"), "--clip-id", cid, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert main(["plot-attention", "--run", str(root / "run"), "--teacher-store", str(root / "store"), "--clip-id", "nope", "--out", str(out)]) == 2


@pytest.mark.slow
def test_eval_tflite_same_clips(trained):
    """--tflite: a float32 export scores the same clips; its confusion matrix equals the Keras one."""
    pytest.importorskip("kws_kd.tflite.export")
    from kws_kd.tflite.export import export_run

    root, manifest = trained
    tfl = root / "model.tflite"
    export_run(root / "run", tfl, quantize="float32", verify_clips=4, log=lambda *a, **k: None)
    report = evaluate_run(root / "run", tflite=tfl)
    keras_report = evaluate_run(root / "run")
    assert report["clips"] == 12
    assert report["confusion_matrix"] == keras_report["confusion_matrix"]
    assert (root / "run" / "confusion_test_model.png").is_file()
