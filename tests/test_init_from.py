"""`kws-kd train --init-from`: a run starts from another run's weights exactly, at any clip length; mismatches fail early."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kws_kd.cli.main import main
from kws_kd.errors import KwsKdError
from kws_kd.init_from import load_init, resolve_init
from kws_kd.run import load_run
from kws_kd.train import TrainOptions, prepare, train

from _train_fixtures import make_tone_dataset

MODEL = "tc_resnet"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A short 1 s source run, and a 2 s dataset with the same labels to warm-start on."""
    root = tmp_path_factory.mktemp("init")
    make_tone_dataset(root / "data1")
    make_tone_dataset(root / "data2", seconds=2.0, seed=1)
    train(TrainOptions(model=MODEL, data=str(root / "data1"), out=str(root / "source"), steps=4, batch_size=8,
                       eval_every=2, seed=3), progress=False)
    return root


def _clip(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(0, 0.1, (2, int(seconds * 16000))).astype(np.float32)


def test_init_loads_the_source_weights_exactly_at_another_length(runs):
    source = load_run(runs / "source")
    expected = source.build_model(clip_seconds=2.0, strip=True)(_clip(2.0)).numpy()
    prep = prepare(TrainOptions(model=MODEL, data=str(runs / "data2"), out=str(runs / "unused"), batch_size=8,
                                init_from=str(runs / "source")))
    assert prep.init_weights == (runs / "source" / "best.weights.h5").resolve()
    assert prep.config.init_from == str(prep.init_weights) and prep.config.clip_seconds == 2.0

    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student

    model = build_student(MODEL, 3, 32000, prep.config.student_config)
    fresh = strip(model)(_clip(2.0)).numpy()
    load_init(model, prep.init_weights)
    got = strip(model)(_clip(2.0)).numpy()
    np.testing.assert_array_equal(got, expected)
    assert not np.allclose(fresh, expected)  # the load did something


def test_warm_started_run_trains_and_records_its_init(runs):
    out = runs / "warm"
    train(TrainOptions(model=MODEL, data=str(runs / "data2"), out=str(out), init_from=str(runs / "source"), steps=2,
                       batch_size=8, eval_every=2, seed=3), progress=False)
    config = json.loads((out / "config.json").read_text())
    assert config["init_from"].endswith("source/best.weights.h5") and config["clip_seconds"] == 2.0
    assert (out / "best.weights.h5").is_file()


def _fake_source(runs: Path, name: str, **changes) -> Path:
    """A copy of the source run whose config.json says something else."""
    folder = runs / name
    shutil.copytree(runs / "source", folder, dirs_exist_ok=True)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    if "labels" in changes:
        (folder / "labels.txt").write_text("".join(f"{x}\n" for x in changes["labels"]))
    return folder


@pytest.mark.parametrize("case,message", [
    ("student", "a lstm_p run cannot initialise a tc_resnet run"),
    ("labels", "its labels (3: low, high, mid, ...) differ from the dataset's"),
    ("architecture", "student config differs in channels"),
    ("missing", "not a run folder or a .weights.h5 file"),
])
def test_mismatch_exits_with_one_line_and_writes_nothing(runs, capsys, case, message):
    if case == "student":
        source = _fake_source(runs, "as_lstm", model="lstm_p")
    elif case == "labels":
        source = _fake_source(runs, "relabelled", labels=["low", "high", "mid"])
    elif case == "architecture":
        cfg = json.loads((runs / "source" / "config.json").read_text())["student_config"]
        source = _fake_source(runs, "wider", student_config={**cfg, "channels": [64, 64]})
    else:
        source = runs / "no_such_run"
    out = runs / f"refused_{case}"
    code = main(["train", "--model", MODEL, "--data", str(runs / "data2"), "--out", str(out), "--batch-size", "8",
                 "--init-from", str(source)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_weights_file_without_its_run_config_is_refused(runs, tmp_path):
    lone = tmp_path / "lone.weights.h5"
    shutil.copy(runs / "source" / "best.weights.h5", lone)
    with pytest.raises(KwsKdError, match="no config.json"):
        resolve_init(str(lone), MODEL, ["low", "mid", "high"], {})
