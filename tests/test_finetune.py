"""`kws-kd teacher finetune` on a tiny generated dataset: best checkpoint, exact resume, label checks, mixing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from export.finetune import FinetuneOptions, finetune  # noqa: E402
from kws_kd.metrics import mean_average_precision  # noqa: E402
from export.teacher_data import MixSource, fixed_batches  # noqa: E402
from export.teacher_model import checkpoint_hash, load_teacher  # noqa: E402
from kws_kd.data.manifest import ClipRecord, Manifest, read_manifest, write_manifest  # noqa: E402
from kws_kd.errors import KwsKdError  # noqa: E402

FREQS = {"a": 300.0, "b": 800.0, "c": 2000.0}


def _make_dataset(root: Path, labels=("a", "b", "c"), per_split=(4, 2, 2)) -> Path:
    """Tones with a little noise, 1 s each; written as a materialised kws-kd dataset."""
    rng = np.random.default_rng(0)
    clips = []
    t = np.arange(16000) / 16000
    for split, n in zip(("train", "validation", "test"), per_split):
        for lab in labels:
            for i in range(n):
                x = 0.4 * np.sin(2 * np.pi * FREQS.get(lab, 1200.0) * t) + 0.05 * rng.standard_normal(16000)
                path = root / "audio" / f"{split}_{lab}_{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), x.astype(np.float32), 16000, subtype="PCM_16")
                clips.append(ClipRecord(f"{lab}/{split}_{i}", split, (lab,), str(path), 0.0, 1.0))
    write_manifest(Manifest(str(root), list(labels), clips, clip_seconds=1.0), root)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _make_dataset(tmp_path_factory.mktemp("tones"))


def _opts(data: Path, out: Path, **kw) -> FinetuneOptions:
    base = dict(data=str(data), out=str(out), config="tiny", batch_size=4, max_steps=4, warmup_steps=100,
                eval_every=1, save_every=1, eval_clips=None, threads=1, progress=False, seed=3)
    base.update(kw)
    return FinetuneOptions(**base)


def _history(out: Path) -> list[dict]:
    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_finetune_keeps_best_and_resume_matches_an_unbroken_run(data, tmp_path):
    # unbroken: 4 steps (warm-up of 100 steps keeps the LR independent of max_steps)
    full = finetune(_opts(data, tmp_path / "full"))
    assert full["steps"] == 4 and full["stop_reason"] == "max-steps"
    hist_full = _history(tmp_path / "full")
    assert [int(r["step"]) for r in hist_full] == [1, 2, 3, 4]

    best = tmp_path / "full" / "best"
    meta = json.loads((best / "teacher.json").read_text())
    assert meta["labels"] == ["a", "b", "c"] and meta["step"] == full["best_step"]
    assert float(meta["val_metric"]) == pytest.approx(max(float(r["val_metric"]) for r in hist_full))
    assert len(checkpoint_hash(best)) == 64
    test = json.loads((tmp_path / "full" / "test_metrics.json").read_text())
    assert test["clips"] == 6 and 0.0 <= test["accuracy"] <= 1.0

    # interrupted after 2 steps, then the same command again with max_steps 4
    part = finetune(_opts(data, tmp_path / "resumed", max_steps=2, test=False))
    assert part["steps"] == 2
    state = torch.load(tmp_path / "resumed" / "state" / "state.pt", weights_only=False)
    assert state["step"] == 2
    resumed = finetune(_opts(data, tmp_path / "resumed", test=False))
    assert resumed["steps"] == 4
    # the same best score at the same step as the unbroken run (the interruption-at-a-signal case,
    # with the same --max-steps throughout, is in test_teacher_curriculum.py)
    assert resumed["best_step"] == full["best_step"]
    assert resumed["best_val_metric"] == full["best_val_metric"]
    hist_res = _history(tmp_path / "resumed")
    assert [int(r["step"]) for r in hist_res] == [1, 2, 3, 4]
    for a, b in zip(hist_full, hist_res):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-5), a["step"]
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-5), a["step"]

    # the best teacher loads and gives the logged validation accuracy back
    teacher = load_teacher(best)
    assert teacher.labels == ["a", "b", "c"]


def test_label_set_that_differs_from_the_data_is_refused(data, tmp_path):
    finetune(_opts(data, tmp_path / "run", max_steps=1, test=False))
    other = _make_dataset(tmp_path / "other", labels=("a", "b", "d"), per_split=(1, 1, 1))
    with pytest.raises(KwsKdError, match="labels"):  # resuming into a run made for other labels
        finetune(_opts(other, tmp_path / "run", max_steps=2, test=False))
    with pytest.raises(KwsKdError, match="differ from the data"):  # fine-tuning a teacher with other labels
        finetune(_opts(other, tmp_path / "run2", config=None, checkpoint=str(tmp_path / "run" / "best"),
                       max_steps=1, test=False))


def test_fresh_mix_places_the_keyword_at_the_reported_span(data):
    manifest = read_manifest(data)
    records = manifest.split("train")
    src = MixSource(records, manifest, [np.zeros(16000 * 3, np.float32)], progress=False)
    batch = src.sample(np.random.default_rng(5), 6, 32000)
    assert batch.audio.shape == (6, 32000)
    for row, cid in enumerate(batch.clip_ids):
        i = [r.clip_id for r in records].index(cid)
        s0 = int(round(batch.spans[row, 0] * 16000))
        assert batch.spans[row, 1] - batch.spans[row, 0] == pytest.approx(1.0)
        expected = np.zeros(32000, np.float32)
        expected[s0 : s0 + 16000] = 0.75 * src.keyword(i)
        np.testing.assert_allclose(batch.audio[row], expected, atol=1e-6)
    # evaluation passes are identical every time; training draws are not
    a = [b.audio for b in fixed_batches(src, 32000, 4, None, seed=1)]
    b = [b.audio for b in fixed_batches(src, 32000, 4, None, seed=1)]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    c = [b.audio for b in fixed_batches(src, 32000, 3, None, seed=1)]  # other batch size, same clips
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(c))
    again = src.sample(np.random.default_rng(6), 6, 32000)
    assert not np.array_equal(again.audio, batch.audio)
    # a source too large to cache reads keywords on demand and mixes the same audio
    import export.teacher_data as td

    old, td.CACHE_BYTES = td.CACHE_BYTES, 0
    try:
        lazy = MixSource(records, manifest, [np.zeros(16000 * 3, np.float32)], progress=False)
    finally:
        td.CACHE_BYTES = old
    assert lazy.keywords is None
    np.testing.assert_array_equal(lazy.sample(np.random.default_rng(5), 6, 32000).audio, batch.audio)


def test_cli_fresh_mix_with_a_noise_folder(data, tmp_path):
    from kws_kd.cli.main import main

    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(str(noise / "n.wav"), (0.1 * np.random.default_rng(0).standard_normal(16000 * 4)).astype(np.float32),
             16000, subtype="PCM_16")
    rc = main(["teacher", "finetune", "--data", str(data), "--out", str(tmp_path / "cli"), "--config", "tiny",
               "--fresh-mix", "--noise", str(noise), "--clip-seconds", "2", "--val-seconds", "2",
               "--batch-size", "2", "--max-steps", "1", "--threads", "1", "--no-progress", "--no-test"])
    assert rc == 0
    assert (tmp_path / "cli" / "best" / "teacher.json").is_file()
    opts = json.loads((tmp_path / "cli" / "finetune.json").read_text())
    assert opts["fresh_mix"] is True and opts["val_seconds"] == 2.0
    assert main(["teacher", "finetune", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2


def test_mean_average_precision_matches_a_hand_computed_value():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.1, 0.2]])
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    # class 0: positives ranked 1 and 3 -> (1/1 + 2/3) / 2; class 1: positive ranked 1 -> 1
    assert mean_average_precision(scores, targets) == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)
