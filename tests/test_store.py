"""The teacher attention store: round trip, shards, and refusing foreign data (numpy only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kws_kd.data.manifest import ClipRecord, Manifest
from kws_kd.errors import KwsKdError
from kws_kd.rollout import RolloutOptions
from kws_kd.store import (
    TeacherStore,
    check_shard_layout,
    init_store,
    make_meta,
    shard_file_name,
    write_shard,
)

LABELS = ["yes", "no", "up"]


def manifest(span_end=0.9):
    clips = [
        ClipRecord("a", "train", ("yes",), "/x/a.wav", 0.1, span_end),
        ClipRecord("b", "train", ("no",), "/x/b.wav"),
        ClipRecord("c", "validation", ("up",), "/x/c.wav"),
        ClipRecord("d", "test", ("yes",), "/x/d.wav"),
    ]
    return Manifest(root="/x", label_names=list(LABELS), clips=clips)


def meta_for(m, teacher_hash="t" * 64, rollout=RolloutOptions()):
    return make_meta(
        manifest_hash=m.content_hash(), labels=m.label_names, multi_label=m.multi_label, teacher_hash=teacher_hash,
        teacher={"num_layers": 4}, frame_rate=50.0, sample_rate=16000, rollout=rollout,
    )


def vectors(rng, lengths):
    out = []
    for n in lengths:
        v = rng.random(n)
        out.append((v / v.sum()).astype(np.float32))
    return out


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    m = manifest()
    meta = meta_for(m, rollout=RolloutOptions(layers="top2", mode="last_layer"))
    store = init_store(tmp_path / "store", meta)
    ids, splits = ["a", "b", "c", "d"], ["train", "train", "validation", "test"]
    vecs = vectors(rng, [49, 99, 49, 399])  # ragged: clips of different lengths
    logits = rng.normal(size=(4, 3)).astype(np.float32)
    write_shard(store, meta, splits=["train", "validation", "test"], shard_index=0, num_shards=1,
                clip_ids=ids, clip_splits=splits, attentions=vecs, logits=logits)

    s = TeacherStore.open(store)
    assert s.manifest_hash == m.content_hash() and s.frame_rate == 50.0 and s.labels == LABELS
    assert s.rollout == RolloutOptions(layers="top2", mode="last_layer")
    assert sorted(s.clip_ids()) == ids and s.clip_ids("train") == ["a", "b"] and s.clip_ids("test") == ["d"]
    assert len(s) == 4 and "c" in s and "zz" not in s
    for cid, v, z in zip(ids, vecs, logits):
        np.testing.assert_array_equal(s.attention(cid), v)
        np.testing.assert_array_equal(s.logits(cid), z)
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        np.testing.assert_allclose(s.probabilities(cid), p, rtol=1e-6)
    assert s.split_of("c") == "validation"
    np.testing.assert_array_equal(s.attention_matrix(["a", "c"]), np.stack([vecs[0], vecs[2]]))
    with pytest.raises(KwsKdError, match="different frame counts"):
        s.attention_matrix(["a", "b"])
    resampled = s.attention_matrix(["a", "b", "d"], length=25)
    assert resampled.shape == (3, 25)
    np.testing.assert_allclose(resampled.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(s.logits_matrix(["d", "a"]), logits[[3, 0]])
    with pytest.raises(KwsKdError, match="'zz' is not in the teacher store"):
        s.attention("zz")
    s.check_manifest(m, splits=["train", "validation", "test"])  # matches: no error
    # readable with plain numpy too (the documented layout)
    with np.load(store / shard_file_name(["train", "validation", "test"], 0, 1)) as z:
        off = z["offsets"]
        np.testing.assert_array_equal(z["attention"][off[3]:off[4]], vecs[3])
    assert json.loads((store / "store.json").read_text())["manifest_hash"] == m.content_hash()


def test_manifest_hash_mismatch_is_refused(tmp_path):
    m, other = manifest(), manifest(span_end=0.95)
    assert m.content_hash() != other.content_hash()
    init_store(tmp_path / "s", meta_for(m))
    with pytest.raises(KwsKdError) as exc:
        init_store(tmp_path / "s", meta_for(other))
    msg = str(exc.value)
    assert "another dataset manifest" in msg and m.content_hash() in msg and other.content_hash() in msg
    with pytest.raises(KwsKdError, match="another teacher checkpoint"):
        init_store(tmp_path / "s", meta_for(m, teacher_hash="u" * 64))
    with pytest.raises(KwsKdError, match="other rollout"):
        init_store(tmp_path / "s", meta_for(m, rollout=RolloutOptions(mode="last_layer")))
    write_shard(tmp_path / "s", meta_for(m), splits=["train"], shard_index=0, num_shards=1, clip_ids=["a"],
                clip_splits=["train"], attentions=[np.ones(3) / 3], logits=np.zeros((1, 3)))
    s = TeacherStore.open(tmp_path / "s")
    with pytest.raises(KwsKdError) as exc:
        s.check_manifest(other)
    assert m.content_hash() in str(exc.value) and other.content_hash() in str(exc.value)
    with pytest.raises(KwsKdError, match="no teacher attention for 1 train clip"):
        s.check_manifest(m, splits=["train"])


def test_sharded_store_merges_and_missing_shard_is_named(tmp_path):
    rng = np.random.default_rng(1)
    m = manifest()
    meta = meta_for(m)
    store = init_store(tmp_path / "s", meta)
    parts = {0: (["a", "d"], ["train", "test"]), 1: (["b"], ["train"]), 2: (["c"], ["validation"])}
    vecs = {}
    for i, (ids, splits) in parts.items():
        v = vectors(rng, [49] * len(ids))
        vecs.update(zip(ids, v))
        write_shard(store, meta, splits=["train", "validation", "test"], shard_index=i, num_shards=3,
                    clip_ids=ids, clip_splits=splits, attentions=v, logits=np.zeros((len(ids), 3)))
    s = TeacherStore.open(store)
    assert sorted(s.clip_ids()) == ["a", "b", "c", "d"]
    for cid, v in vecs.items():
        np.testing.assert_array_equal(s.attention(cid), v)
    missing = store / shard_file_name(["train", "validation", "test"], 1, 3)
    missing.unlink()
    with pytest.raises(KwsKdError) as exc:
        TeacherStore.open(store)
    assert "shard 1 of 3" in str(exc.value) and missing.name in str(exc.value)


def test_foreign_shard_and_duplicates_are_refused(tmp_path):
    m = manifest()
    store = init_store(tmp_path / "s", meta_for(m))
    one = dict(clip_ids=["a"], clip_splits=["train"], attentions=[np.ones(4) / 4], logits=np.zeros((1, 3)))
    write_shard(store, meta_for(m), splits=["train"], shard_index=0, num_shards=1, **one)
    write_shard(store, meta_for(m), splits=["train", "test"], shard_index=0, num_shards=1, **one)
    with pytest.raises(KwsKdError, match="clip 'a' is in both"):
        TeacherStore.open(store)
    # The exporter refuses to create that overlap in the first place.
    with pytest.raises(KwsKdError, match="already holds split"):
        check_shard_layout(store, ["train"], 4)
    check_shard_layout(store, ["validation"], 4)  # no overlap: fine
    (store / shard_file_name(["train", "test"], 0, 1)).unlink()
    # A shard written for another teacher, copied in by hand.
    write_shard(store, meta_for(m, teacher_hash="u" * 64), splits=["test"], shard_index=0, num_shards=1,
                clip_ids=["d"], clip_splits=["test"], attentions=[np.ones(4) / 4], logits=np.zeros((1, 3)))
    with pytest.raises(KwsKdError, match="another teacher checkpoint"):
        TeacherStore.open(store)


def test_not_a_store_errors(tmp_path):
    with pytest.raises(KwsKdError, match="no such teacher store"):
        TeacherStore.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KwsKdError, match="store.json: missing"):
        TeacherStore.open(tmp_path / "empty")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(KwsKdError, match="not empty"):
        init_store(tmp_path / "busy", meta_for(manifest()))
