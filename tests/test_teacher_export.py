"""`kws-kd teacher export`: attentions from wav2vec 2.0, layer-streamed rollout, shards, bad input."""

from __future__ import annotations

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from export.export_store import LayerAttentionTap, export_with_model  # noqa: E402
from export.teacher_model import build_teacher, checkpoint_hash, save_teacher  # noqa: E402
from kws_kd.audio import write_wav  # noqa: E402
from kws_kd.cli.main import main  # noqa: E402
from kws_kd.data.manifest import ClipRecord, Manifest, read_manifest, write_manifest  # noqa: E402
from kws_kd.errors import KwsKdError  # noqa: E402
from kws_kd.rollout import RolloutAccumulator, RolloutOptions, attention_rollout  # noqa: E402
from kws_kd.store import TeacherStore  # noqa: E402

LABELS = ["go", "stop"]


def tiny_wav2vec2(attn="eager", layers=2):
    cfg = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=False,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, layerdrop=0.0,
    )
    cfg._attn_implementation = attn
    torch.manual_seed(0)
    return transformers.Wav2Vec2Model(cfg).eval()


@pytest.mark.parametrize("seconds, frames", [(1.0, 49), (8.0, 399)])
def test_attentions_come_out_and_stream_into_the_same_rollout(seconds, frames):
    model = tiny_wav2vec2()
    x = torch.randn(2, int(seconds * 16000))
    with torch.inference_mode():
        out = model(x, output_attentions=True)
    assert len(out.attentions) == 2
    for a in out.attentions:
        assert tuple(a.shape) == (2, 2, frames, frames)
        np.testing.assert_allclose(a.sum(-1).numpy(), 1.0, atol=1e-5)
    maps = torch.stack(out.attentions, dim=1).numpy()  # [B, L, H, T, T]
    want = attention_rollout(maps)
    # The exporter's path: no output_attentions, hooks fold layer by layer.
    tap_owner = types.SimpleNamespace(wav2vec2=model)
    with LayerAttentionTap(tap_owner) as tap, torch.inference_mode():
        tap.start(RolloutAccumulator(2))
        model(x)
        got = tap.finish()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.shape == (2, frames)


def test_sdpa_attention_cannot_silently_give_no_maps():
    model = tiny_wav2vec2(attn="sdpa")
    with torch.inference_mode():
        assert not model(torch.randn(1, 16000), output_attentions=True).attentions  # the trap: empty, no error
    tap_owner = types.SimpleNamespace(wav2vec2=model)
    with LayerAttentionTap(tap_owner) as tap, torch.inference_mode():
        tap.start(RolloutAccumulator(2))
        with pytest.raises(KwsKdError, match="eager attention"):
            model(torch.randn(1, 16000))


def test_layerdrop_skipped_layers_are_an_error_not_a_shorter_rollout():
    model = tiny_wav2vec2()
    model.config.layerdrop = 1.0  # every layer skipped in train mode
    model.train()
    with LayerAttentionTap(types.SimpleNamespace(wav2vec2=model)) as tap, torch.no_grad():
        tap.start(RolloutAccumulator(2))
        model(torch.randn(1, 16000))
        with pytest.raises(KwsKdError, match="0 layer maps, expected 2"):
            tap.finish()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    clips = []
    for i in range(10):
        split = ["train", "train", "train", "train", "validation", "validation", "test", "test", "test", "train"][i]
        path = root / f"c{i}.wav"
        write_wav(path, (0.3 * rng.standard_normal(16000)).clip(-1, 1).astype(np.float32))
        clips.append(ClipRecord(f"clip{i:02d}", split, (LABELS[i % 2],), str(path), 0.2, 0.6))
    write_manifest(Manifest(str(root), list(LABELS), clips, clip_seconds=1.0), root)
    return root


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("teacher") / "t"
    save_teacher(build_teacher("tiny", list(LABELS)), folder)
    return folder


def test_export_store_matches_rollout_of_returned_maps(dataset, teacher, tmp_path):
    from export.teacher_model import load_teacher

    rc = main(["teacher", "export", "--teacher", str(teacher), "--data", str(dataset), "--out", str(tmp_path / "s"),
               "--batch-size", "3", "--no-progress"])
    assert rc == 0
    store = TeacherStore.open(tmp_path / "s")
    manifest = read_manifest(dataset)
    store.check_manifest(manifest, splits=["train", "validation", "test"])
    assert store.teacher_hash == checkpoint_hash(teacher) and store.frame_rate == 50.0
    assert len(store) == 10 and store.rollout == RolloutOptions()
    model = load_teacher(teacher)
    from kws_kd.audio import read_audio

    for clip in manifest.clips[:3]:
        x = torch.from_numpy(read_audio(clip.path))[None]
        with torch.inference_mode():
            out = model(x, output_attentions=True)
        maps = torch.stack(out.attentions, dim=1)[0].numpy()
        np.testing.assert_allclose(store.attention(clip.clip_id), attention_rollout(maps), atol=1e-5)
        np.testing.assert_allclose(store.logits(clip.clip_id), out.logits[0].numpy(), atol=1e-4)
        assert store.attention(clip.clip_id).shape == (49,)


def test_sharded_export_merges_to_the_unsharded_store(dataset, teacher, tmp_path):
    base = ["teacher", "export", "--teacher", str(teacher), "--data", str(dataset), "--no-progress",
            "--layers", "top1", "--mode", "last_layer"]
    assert main(base + ["--out", str(tmp_path / "one"), "--batch-size", "4"]) == 0
    for i in range(3):
        assert main(base + ["--out", str(tmp_path / "three"), "--batch-size", "2", "--num-shards", "3",
                            "--shard-index", str(i)]) == 0
    one, three = TeacherStore.open(tmp_path / "one"), TeacherStore.open(tmp_path / "three")
    assert len(list((tmp_path / "three").glob("shard-*.npz"))) == 3
    assert sorted(one.clip_ids()) == sorted(three.clip_ids()) and len(one) == 10
    for split in ("train", "validation", "test"):
        assert sorted(one.clip_ids(split)) == sorted(three.clip_ids(split))
    for cid in one.clip_ids():
        np.testing.assert_allclose(three.attention(cid), one.attention(cid), atol=1e-6)
        np.testing.assert_allclose(three.logits(cid), one.logits(cid), atol=1e-5)
    assert one.meta == three.meta
    # a missing shard is a clear one-line error for every reader
    next((tmp_path / "three").glob("shard-*-00001-of-00003.npz")).unlink()
    with pytest.raises(KwsKdError, match="shard 1 of 3"):
        TeacherStore.open(tmp_path / "three")


def test_export_into_a_store_for_other_data_or_teacher_is_refused(dataset, teacher, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["teacher", "export", "--teacher", str(teacher), "--out", str(out), "--no-progress", "--splits", "test"]
    assert main(args + ["--data", str(dataset)]) == 0
    # the same clips with one keyword span moved: another manifest hash
    m = read_manifest(dataset)
    moved = tmp_path / "moved"
    moved.mkdir()
    clips = [ClipRecord(c.clip_id, c.split, c.labels, c.path, c.keyword_start, c.keyword_end + (i == 0) * 0.1)
             for i, c in enumerate(m.clips)]
    write_manifest(Manifest(str(moved), m.label_names, clips, clip_seconds=1.0), moved)
    capsys.readouterr()
    assert main(args + ["--data", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "another dataset manifest" in err and m.content_hash() in err and read_manifest(moved).content_hash() in err
    assert len(err.strip().splitlines()) == 1
    # another teacher
    other = tmp_path / "t2"
    torch.manual_seed(2)
    save_teacher(build_teacher("tiny", list(LABELS)), other)
    assert main(["teacher", "export", "--teacher", str(other), "--data", str(dataset), "--out", str(out),
                 "--no-progress", "--splits", "test"]) == 2
    assert "another teacher checkpoint" in capsys.readouterr().err
    # re-cutting the same split into another shard count is refused, not silently duplicated
    assert main(args + ["--data", str(dataset), "--num-shards", "2"]) == 2
    assert "already holds split(s) test" in capsys.readouterr().err
    # the store still opens and holds exactly the first export
    assert sorted(TeacherStore.open(out).clip_ids()) == sorted(c.clip_id for c in m.split("test"))


def test_bad_input_is_one_line_error(dataset, teacher, tmp_path, capsys):
    # labels that differ from the data
    other = tmp_path / "t3"
    save_teacher(build_teacher("tiny", ["go", "left"]), other)
    assert main(["teacher", "export", "--teacher", str(other), "--data", str(dataset), "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "differ from the teacher's" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("shard-*"))
    # not a wav2vec 2.0 folder
    (tmp_path / "junk").mkdir()
    assert main(["teacher", "export", "--teacher", str(tmp_path / "junk"), "--data", str(dataset), "--out",
                 str(tmp_path / "b"), "--no-progress"]) == 2
    assert "junk" in capsys.readouterr().err
    # a bad layer range fails before any work
    assert main(["teacher", "export", "--teacher", str(teacher), "--data", str(dataset), "--out", str(tmp_path / "c"),
                 "--no-progress", "--layers", "5"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_too_short_audio_names_the_file(teacher, tmp_path):
    from export.teacher_model import load_teacher

    root = tmp_path / "short"
    root.mkdir()
    write_wav(root / "ok.wav", np.zeros(16000, np.float32))
    write_wav(root / "tiny.wav", np.zeros(200, np.float32))  # below the 400-sample receptive field
    clips = [ClipRecord("ok", "test", ("go",), str(root / "ok.wav")), ClipRecord("tiny", "test", ("stop",), str(root / "tiny.wav"))]
    manifest = Manifest(str(root), list(LABELS), clips)  # no fixed clip length: clips keep their own
    with pytest.raises(KwsKdError, match=r"tiny\.wav.*receptive field"):
        export_with_model(load_teacher(teacher), manifest, tmp_path / "s", teacher_hash="x", progress=False)
    assert not list((tmp_path / "s").glob("shard-*"))


def test_mixed_lengths_in_a_batch_are_masked(teacher, tmp_path):
    """A 0.5 s and two 1 s clips in one batch: the short one's vector has its own 24 frames and sums to 1."""
    from export.teacher_model import load_teacher

    root = tmp_path / "mixed"
    root.mkdir()
    rng = np.random.default_rng(3)
    write_wav(root / "long.wav", (0.3 * rng.standard_normal(16000)).clip(-1, 1).astype(np.float32))
    write_wav(root / "short.wav", (0.3 * rng.standard_normal(8000)).clip(-1, 1).astype(np.float32))
    clips = [ClipRecord("long", "test", ("go",), str(root / "long.wav")),
             ClipRecord("short", "test", ("stop",), str(root / "short.wav")),
             ClipRecord("silence", "test", ("stop",), "")]  # a pathless SC silence placeholder: 1 s of zeros
    model = load_teacher(teacher)
    export_with_model(model, Manifest(str(root), list(LABELS), clips), tmp_path / "s", teacher_hash="x",
                      batch_size=3, progress=False)
    store = TeacherStore.open(tmp_path / "s")
    assert store.attention("long").shape == (49,) and store.attention("short").shape == (24,)
    assert store.attention("silence").shape == (49,)
    for cid in ("long", "short", "silence"):
        assert store.attention(cid).sum() == pytest.approx(1.0, abs=1e-5)
        assert np.all(store.attention(cid) > 0)
