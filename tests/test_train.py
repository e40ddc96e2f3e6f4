"""`kws-kd train`: resume gives the unbroken run's history, bad inputs fail before training, NaN stops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kws_kd.cli.main import main
from kws_kd.errors import KwsKdError
from kws_kd.train import TrainOptions, train

from _train_fixtures import make_store, make_tone_dataset

MODEL = "tc_resnet"  # the fastest student to build and step on 2 cores


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("kd")
    manifest = make_tone_dataset(root / "data")
    make_store(root / "store", manifest)
    return root, manifest


def _opts(root: Path, out: str, **kw) -> TrainOptions:
    base = dict(
        model=MODEL,
        data=str(root / "data"),
        out=str(root / out),
        teacher_store=str(root / "store"),
        kd_lambda=0.25,
        steps=4,
        batch_size=8,
        eval_every=2,
        seed=5,
        # SpecAugment and dropout draw from Keras seed generators, whose state the checkpoint
        # restores, so resumed runs must match unbroken ones with augmentation on.
        spec_augment=True,
    )
    base.update(kw)
    return TrainOptions(**base)


def _history(run_dir: Path) -> list[dict]:
    rows = json.loads((run_dir / "history.json").read_text())
    for r in rows:
        r.pop("seconds")
    return rows


def _assert_same_history(a: list[dict], b: list[dict]) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b] == [2, 4]
    for ra, rb in zip(a, b):
        for k in ra:
            if isinstance(ra[k], float):
                assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-6), (ra["step"], k)
            else:
                assert rb[k] == ra[k], (ra["step"], k)


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def unbroken(data):
    root, _ = data
    train(_opts(root, "unbroken"), progress=False)
    return root / "unbroken"


def test_run_folder_contents(unbroken):
    for name in ("config.json", "labels.txt", "best.weights.h5", "last.weights.h5", "history.csv", "history.json", "test_metrics.json"):
        assert (unbroken / name).is_file(), name
    assert any((unbroken / "checkpoint").iterdir())
    assert any((unbroken / "tensorboard").iterdir())
    cfg = json.loads((unbroken / "config.json").read_text())
    assert cfg["kd_lambda"] == 0.25 and cfg["optimizer"] == "sgd" and cfg["learning_rates"] == [0.1, 0.01]
    assert (unbroken / "labels.txt").read_text().split() == ["low", "mid", "high"]
    hist = _history(unbroken)
    assert all(r["train_kd"] > 0 for r in hist)  # the attention term was computed
    assert sum(r["best"] for r in hist) >= 1
    csv_rows = (unbroken / "history.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(hist)
    test = json.loads((unbroken / "test_metrics.json").read_text())
    assert test["clips"] == 12 and np.array(test["confusion_matrix"]).sum() == 12
    assert 0 <= test["attention_in_span"]["mass_in_span"] <= 1


def test_interrupted_run_resumes_to_same_history(data, unbroken):
    root, _ = data

    def interrupt(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_opts(root, "interrupted"), on_step=interrupt, progress=False)
    run = root / "interrupted"
    assert len(_history(run)) == 1  # step 2 only
    assert "ckpt-3.index" in {p.name for p in (run / "checkpoint").iterdir()}  # saved at the interruption
    stats = train(_opts(root, "interrupted"), progress=False)
    assert stats.start_step == 3 and stats.end_step == 4
    _assert_same_history(_history(unbroken), _history(run))
    assert json.loads((run / "test_metrics.json").read_text())["accuracy"] == json.loads(
        (unbroken / "test_metrics.json").read_text()
    )["accuracy"]


def test_crashed_run_resumes_from_last_checkpoint(data, unbroken):
    """A crash (no chance to save) restarts at the last validation checkpoint, same data order."""
    root, _ = data

    def crash(step):
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        train(_opts(root, "crashed"), on_step=crash, progress=False, evaluate_test=False)
    stats = train(_opts(root, "crashed"), progress=False, evaluate_test=False)
    assert stats.start_step == 2
    _assert_same_history(_history(unbroken), _history(root / "crashed"))


def test_mirrored_strategy_one_cpu_matches_default(data, unbroken):
    root, _ = data
    train(_opts(root, "mirrored", distribute="mirrored"), progress=False, evaluate_test=False)
    _assert_same_history(_history(unbroken), _history(root / "mirrored"))


def test_resume_with_other_config_is_refused(data, unbroken):
    root, _ = data
    with pytest.raises(KwsKdError, match="another config.*kd_lambda"):
        train(_opts(root, "unbroken", kd_lambda=0.5), progress=False)


def test_nan_loss_stops_and_keeps_checkpoint(data):
    root, _ = data
    # a sane learning rate for 4 steps (checkpoints at steps 2 and 4), then an absurd one
    with pytest.raises(KwsKdError, match=r"loss became (nan|inf) at step [56].*Last good checkpoint kept: .*ckpt-4$"):
        train(_opts(root, "nan", learning_rates=[0.001, 1e38], optimizer="adam", steps=6, kd_lambda=0.0), progress=False)
    run = root / "nan"
    assert (run / "last.weights.h5").is_file() and not (run / "test_metrics.json").exists()
    rows = json.loads((run / "history.json").read_text())
    assert [r["step"] for r in rows] == [2, 4] and all(np.isfinite(r["train_loss"]) for r in rows)
    assert "ckpt-4.index" in {p.name for p in (run / "checkpoint").iterdir()}


# ---------------------------------------------------------------- bad input, each before training


def _refused(root: Path, out: str, match: str, **kw) -> None:
    with pytest.raises(KwsKdError, match=match):
        train(_opts(root, out, **kw), progress=False)
    assert not (root / out).exists()  # nothing written: refused before training


def test_store_missing_train_clips(data, tmp_path):
    root, manifest = data
    drop = [c.clip_id for c in manifest.split("train")][:7]
    make_store(tmp_path / "partial", manifest, drop=drop)
    msg = r"missing 7 of 24 train clip ids \(first 5: " + ", ".join(drop[:5]) + r"\)"
    _refused(root, "r_missing", msg, teacher_store=str(tmp_path / "partial"))


def test_store_for_another_manifest(data, tmp_path):
    root, _ = data
    other = make_tone_dataset(tmp_path / "other", seed=9)
    make_store(tmp_path / "other_store", other)
    _refused(root, "r_other", "another dataset manifest", teacher_store=str(tmp_path / "other_store"))


@pytest.mark.parametrize("lam", [-0.5, 1.5])
def test_lambda_out_of_range(data, lam):
    root, _ = data
    _refused(root, "r_lambda", "kd-lambda must be in", kd_lambda=lam)


def test_student_longer_than_teacher(data, tmp_path):
    root, manifest = data
    make_store(tmp_path / "coarse", manifest, frames=10)  # tc_resnet at 1 s has n' = 25
    _refused(root, "r_coarse", r"10 frames but the student needs n'=25", teacher_store=str(tmp_path / "coarse"))


def test_nan_in_stored_vector(data, tmp_path):
    root, manifest = data
    bad = manifest.split("train")[4].clip_id
    make_store(tmp_path / "poison", manifest, poison=bad)
    _refused(root, "r_nan", f"attention of clip '{bad}' contains NaN or inf", teacher_store=str(tmp_path / "poison"))


def test_kd_without_store(data):
    root, _ = data
    _refused(root, "r_nostore", "needs --teacher-store", teacher_store=None)


def test_teacher_logits_follow_dataset_label_order(data, tmp_path):
    """A store whose teacher lists the labels in another order: logit-KD targets are reordered to the dataset's."""
    from kws_kd.store import TeacherStore
    from kws_kd.train import prepare

    root, manifest = data
    order = list(reversed(manifest.label_names))
    make_store(tmp_path / "rev", manifest, labels=order)
    prep = prepare(_opts(root, "r_rev", teacher_store=str(tmp_path / "rev"), kd_lambda=0.0, logit_kd_beta=0.5))
    store = TeacherStore.open(tmp_path / "rev")
    for i, cid in enumerate(prep.train_ids[:5]):
        stored = dict(zip(order, store.logits(cid)))
        assert prep.teacher_logits[i].tolist() == [stored[lab] for lab in manifest.label_names]
        label = next(c.label for c in manifest.clips if c.clip_id == cid)
        assert manifest.label_names[int(np.argmax(prep.teacher_logits[i]))] == label
    assert prep.teacher_attention is None  # lambda = 0: no attention targets at all


def test_cli_bad_lambda_exits_2(data, capsys):
    root, _ = data
    code = main(["train", "--model", MODEL, "--data", str(root / "data"), "--out", str(root / "cli_bad"), "--kd-lambda", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "kd-lambda must be in [0, 1]" in err and len(err.strip().splitlines()) == 1


def test_feature_cache_gives_the_same_run(data, unbroken):
    """Cached MFCCs feed the same batches in the same order as the in-graph front end (`unbroken` caches: auto)."""
    root, _ = data
    assert json.loads((unbroken / "config.json").read_text())["feature_cache"] == "auto"
    train(_opts(root, "no_cache", feature_cache="off"), progress=False)
    _assert_same_history(_history(unbroken), _history(root / "no_cache"))

