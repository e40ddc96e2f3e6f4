"""The wav2vec 2.0 teacher model: attention shapes, eager enforcement, head, save/load, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from export.teacher_configs import named_config as _named_config  # noqa: E402
from export.teacher_model import (  # noqa: E402
    TeacherClassifier,
    build_teacher,
    checkpoint_hash,
    load_teacher,
    save_teacher,
)
from kws_kd.errors import KwsKdError  # noqa: E402

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def tiny() -> TeacherClassifier:
    torch.manual_seed(0)
    return build_teacher("tiny", LABELS).eval()


def _frames(n: int, kernels=(10, 3, 3, 3, 3, 2, 2), strides=(5, 2, 2, 2, 2, 2, 2)) -> int:
    for k, s in zip(kernels, strides):
        n = (n - k) // s + 1
    return n


@pytest.mark.parametrize("seconds,frames", [(1.0, 49), (8.0, 399)])
def test_attentions_come_out_at_1s_and_8s(tiny, seconds, frames):
    n = int(seconds * 16000)
    assert tiny.num_frames(n) == frames == _frames(n)
    with torch.no_grad():
        out = tiny(torch.randn(2, n), output_attentions=True)
    assert out.logits.shape == (2, 3)
    assert len(out.attentions) == tiny.wav2vec2.config.num_hidden_layers == 2
    for a in out.attentions:
        assert a.shape == (2, 2, frames, frames)
        # post-softmax: every row is a distribution
        np.testing.assert_allclose(a.sum(-1).numpy(), 1.0, atol=1e-5)
        assert (a >= 0).all()
    assert out.frame_mask.shape == (2, frames) and out.frame_mask.all()


def test_geometry():
    m = build_teacher("tiny", LABELS)
    assert m.frame_rate == 50.0
    assert m.receptive_field_samples == 400
    assert _frames(400) == 1 and _frames(399) == 0


def test_eager_is_forced_even_when_the_config_asks_for_sdpa():
    cfg = _named_config("tiny")
    cfg._attn_implementation = "sdpa"
    m = build_teacher(cfg, LABELS).eval()
    assert cfg._attn_implementation == "sdpa", "the caller's config must not be mutated"
    x = torch.randn(1, 16000)
    with torch.no_grad():
        assert len(m(x, output_attentions=True).attentions) == 2
        # someone switches the backbone to SDPA later: forward switches it back
        m.wav2vec2.set_attn_implementation("sdpa")
        assert m.wav2vec2.config._attn_implementation == "sdpa"
        out = m(x, output_attentions=True)
    assert len(out.attentions) == 2 and all(a is not None for a in out.attentions)


def test_layerdrop_in_train_mode_cannot_return_missing_maps():
    cfg = _named_config("tiny")
    cfg.layerdrop = 1.0  # every layer skipped in train mode
    m = build_teacher(cfg, LABELS).train()
    with pytest.raises(KwsKdError, match="0 of 2 attention maps"):
        m(torch.randn(1, 16000), output_attentions=True)
    with torch.no_grad():  # eval mode: no LayerDrop, all maps
        assert len(m.eval()(torch.randn(1, 16000), output_attentions=True).attentions) == 2


def test_first_pooling_reads_frame_0_and_mean_pooling_masks(tiny):
    x = torch.randn(2, 16000)
    with torch.no_grad():
        hidden = tiny.wav2vec2(x).last_hidden_state
        logits = tiny(x).logits
        expected = hidden[:, 0] @ tiny.head.weight.T + tiny.head.bias
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)

    torch.manual_seed(1)
    mean = build_teacher("tiny", LABELS, pooling="mean").eval()
    mask = torch.ones(2, 16000, dtype=torch.long)
    mask[1, 8000:] = 0
    with torch.no_grad():
        out = mean(x, attention_mask=mask)
        h = mean.wav2vec2(x, attention_mask=mask).last_hidden_state
        n_real = _frames(8000)
        pooled = torch.stack([h[0].mean(0), h[1, :n_real].mean(0)])
        expected = pooled @ mean.head.weight.T + mean.head.bias
    assert out.frame_mask[0].sum() == 49 and out.frame_mask[1].sum() == n_real
    np.testing.assert_allclose(out.logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_gives_identical_logits(tiny, tmp_path):
    save_teacher(tiny, tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "teacher.json").read_text())
    assert meta["labels"] == LABELS and meta["pooling"] == "first" and meta["multi_label"] is False
    assert meta["source"] == "tiny" and meta["frame_rate"] == 50.0
    loaded = load_teacher(tmp_path / "t")
    assert not loaded.training and loaded.labels == LABELS
    x = torch.randn(2, 16000)
    with torch.no_grad():
        a, b = tiny(x, output_attentions=True), loaded(x, output_attentions=True)
    np.testing.assert_array_equal(a.logits.numpy(), b.logits.numpy())
    np.testing.assert_array_equal(a.attentions[-1].numpy(), b.attentions[-1].numpy())
    h1 = checkpoint_hash(tmp_path / "t")
    assert len(h1) == 64 and h1 == checkpoint_hash(tmp_path / "t")
    # saved folder is also a plain HF wav2vec 2.0 checkpoint: a new head with other labels builds from it
    other = build_teacher(str(tmp_path / "t"), ["x", "y"]).eval()
    with torch.no_grad():
        np.testing.assert_array_equal(other.wav2vec2(x).last_hidden_state.numpy(),
                                      tiny.wav2vec2(x).last_hidden_state.numpy())
    # a changed head changes the hash
    with torch.no_grad():
        loaded.head.bias += 1.0
    save_teacher(loaded, tmp_path / "t2")
    assert checkpoint_hash(tmp_path / "t2") != h1


def test_a_folder_that_is_not_wav2vec2_is_refused(tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(KwsKdError, match="not 'wav2vec2'"):
        build_teacher(str(bert), LABELS)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KwsKdError, match="no config.json"):
        build_teacher(str(empty), LABELS)
    with pytest.raises(KwsKdError, match="unknown teacher config"):
        build_teacher("no-such-config", LABELS)
    with pytest.raises(KwsKdError, match="not a kws-kd teacher"):
        load_teacher(empty)


def test_audio_shorter_than_the_receptive_field_is_refused(tiny):
    with pytest.raises(KwsKdError, match="399 samples"):
        tiny(torch.randn(1, 399))
    with torch.no_grad():
        assert tiny(torch.randn(1, 400)).logits.shape == (1, 3)


def test_span_stats_match_a_hand_computed_example():
    from export.attention_check import span_stats

    centres = np.array([0.01, 0.03, 0.05, 0.07, 0.09])
    vectors = np.array([[0.5, 0.1, 0.3, 0.1, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2]])
    spans = np.array([[0.04, 0.08], [-1.0, -1.0]])  # second clip has no span: skipped
    s = span_stats(vectors, centres, spans)
    # frame 0 dropped, rest renormalised: [0.2, 0.6, 0.2, 0.0]; frames 2 and 3 are in the span
    assert s["clips"] == 1
    assert s["mass"] == pytest.approx(0.8) and s["chance"] == pytest.approx(0.5)
    assert s["ratio"] == pytest.approx(1.6) and s["peak_in_span"] == 1.0


def test_attention_focus_runs_on_a_mixed_source(tiny):
    from export.attention_check import attention_focus
    from export.teacher_data import MixSource
    from kws_kd.data.manifest import ClipRecord, Manifest

    recs = [ClipRecord(f"c{i}", "test", (LABELS[i % 3],), "") for i in range(4)]
    manifest = Manifest("/nowhere", LABELS, recs)
    src = MixSource(recs, manifest, [np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1],
                    progress=False)
    src.keywords[:] = np.random.default_rng(1).standard_normal(src.keywords.shape).astype(np.float32) * 0.3
    res = attention_focus(tiny, src, 2.0, batch_size=2)
    assert res["clips"] == 4 and 0.0 <= res["accuracy"] <= 1.0
    for target in ("rollout", "rollout_top2", "last_layer"):
        assert res[target]["clips"] == 4
        assert 0.0 <= res[target]["mass"] <= 1.0
        # a 1 s span in 2 s (98 frames after frame 0) holds about half the frames
        assert res[target]["chance"] == pytest.approx(0.5, abs=0.03)


def test_the_shipped_reference_teacher_loads_and_matches_its_figures():
    from pathlib import Path

    ref = Path(__file__).resolve().parents[1] / "export" / "reference_teacher"
    if not (ref / "teacher.json").is_file():
        pytest.skip("no reference teacher shipped in this checkout")
    figures = json.loads((ref / "metrics.json").read_text())
    assert checkpoint_hash(ref) == figures["checkpoint_hash"], "metrics.json describes other weights"
    model = load_teacher(ref)
    assert model.labels[:2] == ["_silence_", "_unknown_"] and len(model.labels) == 12
    with torch.no_grad():
        out = model(torch.zeros(1, 128000), output_attentions=True)
    assert len(out.attentions) == 4 and out.attentions[0].shape == (1, 4, 399, 399)
