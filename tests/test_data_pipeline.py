"""tf.data pipeline: batch contract, determinism/resume, fresh mixing, multi-label, extra join."""

import numpy as np
import pytest
from conftest import make_noise_dir, make_sc_tree

tf = pytest.importorskip("tensorflow")

from kws_kd.audio import read_audio  # noqa: E402
from kws_kd.data.noisy import build_noisy  # noqa: E402
from kws_kd.data.pipeline import epoch_order, make_dataset, table_extra  # noqa: E402
from kws_kd.data.speech_commands import read_speech_commands  # noqa: E402


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    sc = make_sc_tree(root / "sc", words=("yes", "no", "up", "bed"), speakers=12, per_speaker=1)
    noise = make_noise_dir(root / "noise", seconds=3.0)
    m = build_noisy(read_speech_commands(sc), noise, 1.5, root / "noisy", seed=2, progress=False)
    return m, noise


def _all(ds, key):
    return np.concatenate([b[key].numpy() for b in ds])


def test_batch_contract_and_audio_matches_files(noisy):
    m, _ = noisy
    ds = make_dataset(m, "train", 8)
    b = next(iter(ds))
    assert b["audio"].dtype == tf.float32 and b["audio"].shape == (8, 24000)
    assert b["label"].dtype == tf.int32 and b["label"].shape == (8,)
    assert b["clip_id"].dtype == tf.string and b["keyword_span"].shape == (8, 2)
    recs = m.split("train")[:8]
    np.testing.assert_allclose(b["audio"].numpy(), np.stack([read_audio(r.path) for r in recs]), atol=1e-6)
    assert [x.decode() for x in b["clip_id"].numpy()] == [r.clip_id for r in recs]
    idx = m.label_index()
    assert b["label"].numpy().tolist() == [idx[r.label] for r in recs]
    for r, span in zip(recs, b["keyword_span"].numpy()):
        want = [-1, -1] if r.keyword_start is None else [r.keyword_start, r.keyword_end]
        np.testing.assert_allclose(span, want, atol=1e-5)
    n = len(m.split("train"))
    assert len(_all(make_dataset(m, "train", 8, drop_remainder=True), "label")) == n // 8 * 8
    # in-memory loader gives the same batches
    np.testing.assert_allclose(_all(make_dataset(m, "train", 8, in_memory=True), "audio"), _all(ds, "audio"), atol=1e-6)


def test_shuffle_is_deterministic_and_resumable(noisy):
    m, _ = noisy
    recs = m.split("train")
    n = len(recs)
    ids = lambda ds: [x.decode() for x in _all(ds, "clip_id")]  # noqa: E731
    a = ids(make_dataset(m, "train", 5, shuffle=True, seed=4))
    assert a == ids(make_dataset(m, "train", 5, shuffle=True, seed=4))
    assert sorted(a) == sorted(r.clip_id for r in recs) and a != [r.clip_id for r in recs]
    assert a == [recs[k].clip_id for k in epoch_order(n, 4, 0)]
    e1 = ids(make_dataset(m, "train", 5, shuffle=True, seed=4, epoch=1))
    assert e1 != a and sorted(e1) == sorted(a)
    # repeat runs epoch 0 then epoch 1; skipping batches resumes mid-stream
    rep = make_dataset(m, "train", 5, shuffle=True, seed=4, repeat=True)
    stream = [x.decode() for b in rep.take(2 * n // 5) for x in b["clip_id"].numpy()]
    assert stream[:n] == a and stream[n : 2 * (n // 5) * 5] == (a + e1)[n : 2 * (n // 5) * 5]
    skipped = make_dataset(m, "train", 5, shuffle=True, seed=4, repeat=True, skip_batches=3)
    assert [x.decode() for x in next(iter(skipped))["clip_id"].numpy()] == stream[15:20]


def test_fresh_mix_places_keyword_and_changes_per_epoch(noisy):
    m, noise_dir = noisy
    noises = [read_audio(p) for p in sorted(noise_dir.glob("*.wav"))]
    ds0 = make_dataset(m, "train", 6, fresh_mix=noise_dir, seed=1)
    b = next(iter(ds0))
    recs = m.split("train")[:6]
    for r, audio, span in zip(recs, b["audio"].numpy(), b["keyword_span"].numpy()):
        assert span[1] - span[0] == pytest.approx(1.0)
        s = int(round(span[0] * 16000))
        kw = np.zeros(24000, np.float32)
        kw[s : s + 16000] = read_audio(r.source)[:16000]
        resid = (audio - 0.75 * kw) / 0.25  # must be an exact window of one noise file
        hit = False
        for nz in noises:
            starts = np.flatnonzero(np.abs(nz[: len(nz) - 24000 + 1] - resid[0]) < 1e-4)
            hit |= any(np.max(np.abs(nz[k : k + 24000] - resid)) < 1e-4 for k in starts)
        assert hit, r.clip_id
    again = next(iter(make_dataset(m, "train", 6, fresh_mix=noise_dir, seed=1)))
    np.testing.assert_array_equal(again["audio"].numpy(), b["audio"].numpy())
    other = next(iter(make_dataset(m, "train", 6, fresh_mix=noise_dir, seed=1, epoch=1)))
    assert not np.allclose(other["audio"].numpy(), b["audio"].numpy())
    # validation is never re-mixed
    v = next(iter(make_dataset(m, "validation", 4, fresh_mix=noise_dir)))
    np.testing.assert_allclose(v["audio"].numpy()[0], read_audio(m.split("validation")[0].path), atol=1e-6)


def test_multi_label_batches_resample(tmp_path):
    from test_data_fsd50k import make_fsd

    from kws_kd.data.fsd50k import read_fsd50k

    m = read_fsd50k(make_fsd(tmp_path / "fsd"), clip_seconds=1.0)
    b = next(iter(make_dataset(m, "train", 2)))
    assert b["label"].dtype == tf.float32 and b["label"].shape == (2, 4)
    np.testing.assert_array_equal(b["label"].numpy(), [[1, 1, 0, 0], [0, 0, 1, 1]])
    assert b["audio"].shape == (2, 16000)
    np.testing.assert_allclose(b["audio"].numpy()[0, :7000], read_audio(m.split("train")[0].path)[:7000], atol=1e-6)
    assert np.all(b["audio"].numpy()[0, 8100:] == 0)


def test_table_extra_joins_by_clip_id(noisy):
    m, _ = noisy
    recs = m.split("train")
    ids = [r.clip_id for r in recs][::-1]  # a different order than the dataset's
    att = np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3)
    ds = make_dataset(m, "train", 4, shuffle=True, extra=table_extra(ids, {"teacher_attention": att}))
    b = next(iter(ds))
    for cid, row in zip(b["clip_id"].numpy(), b["teacher_attention"].numpy()):
        np.testing.assert_array_equal(row, att[ids.index(cid.decode())])
    partial = table_extra(ids[:2], {"t": att[:2]})
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in the extra table"):
        for _ in make_dataset(m, "train", 4, extra=partial):
            pass
