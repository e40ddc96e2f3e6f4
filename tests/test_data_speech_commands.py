"""Speech Commands reader: layouts, splits, label modes."""

import collections
import hashlib
import math

import pytest
from conftest import make_sc_tree

from kws_kd.data.speech_commands import (
    LABELS_12,
    SILENCE,
    UNKNOWN,
    WORDS_35,
    filename_hash_split,
    read_speech_commands,
    speaker_hash_split,
    speaker_of,
)
from kws_kd.errors import KwsKdError


def test_official_lists_define_val_and_test(sc_tree):
    m = read_speech_commands(sc_tree, labels="35")
    val = set((sc_tree / "validation_list.txt").read_text().split())
    test = set((sc_tree / "testing_list.txt").read_text().split())
    for c in m.clips:
        rel = c.clip_id + ".wav"
        assert c.split == ("validation" if rel in val else "test" if rel in test else "train")
    assert len(m.clips) == 12 * 12 * 1


def test_missing_split_list_is_a_clear_error(tmp_path):
    root = make_sc_tree(tmp_path / "sc", lists=False, speakers=2, per_speaker=1)
    with pytest.raises(KwsKdError, match=r"validation_list\.txt: split list missing"):
        read_speech_commands(root)
    # but a hash split works without lists
    assert read_speech_commands(root, split_method="filename-hash").clips


def test_filename_hash_split_matches_independent_formula():
    for name in ["0a7c2a8d_nohash_0.wav", "ffd2ba2f_nohash_4.wav", "3bc21161_nohash_1.wav"]:
        h = int(hashlib.sha1(name.split("_nohash_")[0].encode()).hexdigest(), 16)
        pct = (h % 2**27) * (100.0 / (2**27 - 1))
        want = "validation" if pct < 10 else "test" if pct < 20 else "train"
        assert filename_hash_split(f"yes/{name}", 10, 10) == want


def test_twelve_label_mapping_and_proportions(sc_tree):
    m = read_speech_commands(sc_tree, labels="12", seed=3)
    assert m.label_names == list(LABELS_12)
    for split, counts in m.counts().items():
        n_kw = sum(v for k, v in counts.items() if k not in (SILENCE, UNKNOWN))
        assert counts[SILENCE] == math.ceil(n_kw * 0.1)
        assert counts[UNKNOWN] <= math.ceil(n_kw * 0.1)
    unk = [c for c in m.clips if c.label == UNKNOWN]
    assert unk and all(c.clip_id.split("/")[0] in ("bed", "cat") for c in unk)
    sil = [c for c in m.clips if c.label == SILENCE]
    assert all(c.path == "" for c in sil)
    # deterministic by seed, different across seeds
    again = read_speech_commands(sc_tree, labels="12", seed=3)
    assert [c.clip_id for c in again.clips] == [c.clip_id for c in m.clips]
    other = read_speech_commands(sc_tree, labels="12", seed=4)
    assert {c.clip_id for c in other.clips if c.label == UNKNOWN} != {c.clip_id for c in unk}


def test_unknown_proportion_exact_when_pool_is_large(tmp_path):
    root = make_sc_tree(tmp_path / "sc", words=("yes", "no", "bed", "cat", "dog"), speakers=12, per_speaker=3)
    m = read_speech_commands(root, labels="12", keywords=("yes", "no"))
    for split, counts in m.counts().items():
        n_kw = counts["yes"] + counts["no"]
        assert counts[UNKNOWN] == math.ceil(n_kw * 0.1)


def test_speaker_hash_split_balances_and_is_stable():
    counts = {f"{i:08x}": 5 + (i * 7) % 40 for i in range(200)}
    a = speaker_hash_split(counts, 15, 15)
    total = sum(counts.values())
    by = collections.Counter()
    for k, s in a.items():
        by[s] += counts[k]
    assert abs(by["validation"] / total - 0.15) < 0.01 and abs(by["test"] / total - 0.15) < 0.01
    assert a == speaker_hash_split(dict(reversed(list(counts.items()))), 15, 15)  # order-independent
    assert a != speaker_hash_split(counts, 15, 15, salt="other")


def test_shared_subset_loads_as_it_is(sc_subset):
    m = read_speech_commands(sc_subset)
    assert len(m.clips) == 3085 and m.label_names == list(LABELS_12)
    assert m.info["layout"] == "test-archive" and m.info["split_method"] == "speaker-hash"
    ids = [c.clip_id for c in m.clips]
    assert len(set(ids)) == len(ids)
    assert any(i.startswith("_unknown_/") and not i.endswith(".wav") for i in ids)
    # speakers are disjoint across splits
    splits_of = collections.defaultdict(set)
    for c in m.clips:
        splits_of[speaker_of(c.path)].add(c.split)
    assert max(len(s) for s in splits_of.values()) == 1
    # sizes near the requested 70/15/15
    n = collections.Counter(c.split for c in m.clips)
    assert abs(n["validation"] / 3085 - 0.15) < 0.02 and abs(n["test"] / 3085 - 0.15) < 0.02
    # the split is not the subset's own sha1 % 10 cut reused: test speakers span several residues
    residues = {int(hashlib.sha1(speaker_of(c.path).encode()).hexdigest(), 16) % 10
                for c in m.clips if c.split == "test" and c.label != SILENCE}
    assert len(residues) >= 4
    m35 = read_speech_commands(sc_subset, labels="35")
    assert m35.label_names == list(WORDS_35) and len(m35.clips) == 3085 - 265
    assert read_speech_commands(sc_subset).content_hash() == m.content_hash()
