"""Attention rollout against an independent loop implementation and hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from kws_kd.cli.main import main
from kws_kd.errors import KwsKdError
from kws_kd.rollout import (
    INTERPOLATIONS,
    RolloutAccumulator,
    RolloutOptions,
    attention_rollout,
    interpolate_attention,
    resolve_layers,
)


def random_maps(rng, shape):
    """Post-softmax maps: random logits, softmax over the last axis."""
    z = rng.normal(size=shape) * 2.0
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def loop_rollout(maps, mask=None, layers=None, w=0.5, fusion="mean", mode="rollout"):
    """Reference written with explicit Python loops: one clip, [L, H, T, T]."""
    num_layers, heads, t, _ = maps.shape
    real = [True] * t if mask is None else [bool(m) for m in mask]
    chosen = list(range(num_layers)) if layers is None else layers
    fused_layers = []
    for l in chosen:
        fused = [[0.0] * t for _ in range(t)]
        for i in range(t):
            for j in range(t):
                vals = [float(maps[l, h, i, j]) for h in range(heads)]
                fused[i][j] = (sum(vals) / heads if fusion == "mean" else max(vals)) if real[j] else 0.0
            s = sum(fused[i])
            fused[i] = [x / s if s > 0 else 0.0 for x in fused[i]]
        fused_layers.append(fused)
    if mode == "last_layer":
        row = fused_layers[-1][0]
        s = sum(row)
        return np.array([x / s for x in row])
    # row vector times matrices, from the TOP layer down: v = e0 B_L ... B_1
    v = [1.0 if j == 0 else 0.0 for j in range(t)]
    for fused in reversed(fused_layers):
        b = [[(1 - w) * fused[i][j] + (w if (i == j and real[j]) else 0.0) for j in range(t)] for i in range(t)]
        v = [sum(v[i] * b[i][j] for i in range(t)) for j in range(t)]
    s = sum(v)
    return np.array([x / s for x in v])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"residual_weight": 0.3},
        {"head_fusion": "max"},
        {"layers": "top2"},
        {"layers": [0, 2]},
        {"mode": "last_layer"},
        {"mode": "last_layer", "layers": 1},
        {"residual_weight": 0.0, "head_fusion": "max", "layers": "1:3"},
    ],
)
def test_rollout_matches_loop_reference_on_random_maps(kwargs):
    rng = np.random.default_rng(len(str(kwargs)))
    maps = random_maps(rng, (3, 4, 3, 7, 7))  # batch 3, 4 layers, 3 heads, 7 frames
    got = attention_rollout(maps, **kwargs)
    layers = resolve_layers(kwargs.get("layers"), 4)
    for b in range(3):
        want = loop_rollout(
            maps[b],
            layers=layers,
            w=kwargs.get("residual_weight", 0.5),
            fusion=kwargs.get("head_fusion", "mean"),
            mode=kwargs.get("mode", "rollout"),
        )
        np.testing.assert_allclose(got[b], want, atol=1e-6)
        assert got[b].sum() == pytest.approx(1.0, abs=1e-9)


def test_rollout_hand_checked_3x3():
    # Layer 1, two heads: identity and "everyone looks at frame 1 (row 0 splits)".
    h1 = np.eye(3)
    h2 = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Head mean A1 = [[.5,.5,0],[0,1,0],[0,0,1]]  ->  B1 = .5 A1 + .5 I = [[.75,.25,0],[0,1,0],[0,0,1]]
    a2 = np.array([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]])
    # B2 = [[.5,.25,.25],[1/6,2/3,1/6],[0,0,1]]
    maps = np.stack([np.stack([h1, h2]), np.stack([a2, a2])])  # [2 layers, 2 heads, 3, 3]
    # Row 0 of B2 @ B1 = .5*[.75,.25,0] + .25*[0,1,0] + .25*[0,0,1] = [.375, .375, .25]
    np.testing.assert_allclose(attention_rollout(maps), [0.375, 0.375, 0.25], atol=1e-12)
    # Last layer raw: row 0 of A2.
    np.testing.assert_allclose(attention_rollout(maps, mode="last_layer"), [0.0, 0.5, 0.5], atol=1e-12)
    # Only layer 1: row 0 of B1.
    np.testing.assert_allclose(attention_rollout(maps, layers=0), [0.75, 0.25, 0.0], atol=1e-12)
    # Max over heads in layer 1 is [[1,1,0],...] -> rows renormalised -> the same A1.
    np.testing.assert_allclose(attention_rollout(maps, head_fusion="max", layers=0), [0.75, 0.25, 0.0], atol=1e-12)
    # Frame 2 padded: A2 rows lose column 2 and renormalise: row0 [0,1,0], row1 [.5,.5,0]
    # B2 = [[.5,.5,0],[.25,.75,0],...], B1 row0 [.75,.25,0], row1 [0,1,0]
    # row 0 = .5*[.75,.25,0] + .5*[0,1,0] = [.375, .625, 0]
    np.testing.assert_allclose(attention_rollout(maps, mask=[1, 1, 0]), [0.375, 0.625, 0.0], atol=1e-12)


def test_masked_rollout_equals_rollout_of_cropped_maps():
    rng = np.random.default_rng(1)
    # As a transformer with a key padding mask produces them: zero weight on padded keys, per head.
    maps = random_maps(rng, (3, 2, 9, 9))
    maps[..., 6:] = 0.0
    maps /= maps.sum(-1, keepdims=True)
    mask = np.array([1] * 6 + [0] * 3, dtype=bool)
    got = attention_rollout(maps, mask)
    np.testing.assert_allclose(got[:6], attention_rollout(maps[:, :, :6, :6]), atol=1e-12)
    assert np.all(got[6:] == 0.0)


def test_batched_mask_is_per_clip():
    rng = np.random.default_rng(2)
    maps = random_maps(rng, (2, 2, 2, 5, 5))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    got = attention_rollout(maps, mask)
    np.testing.assert_allclose(got[0], attention_rollout(maps[0]), atol=1e-12)
    np.testing.assert_allclose(got[1], attention_rollout(maps[1], mask[1]), atol=1e-12)
    np.testing.assert_allclose(got[1], loop_rollout(maps[1], mask[1]), atol=1e-6)


def test_incremental_equals_batch_rollout():
    rng = np.random.default_rng(3)
    maps = random_maps(rng, (2, 6, 4, 11, 11))
    mask = np.ones((2, 11), bool)
    mask[1, 8:] = False
    for opts in (RolloutOptions(), RolloutOptions(layers="top2", head_fusion="max"), RolloutOptions(mode="last_layer")):
        acc = RolloutAccumulator.from_options(6, opts, mask)
        for layer in range(6):
            acc.update(maps[:, layer])
        want = attention_rollout(maps, mask, **opts.to_dict())
        np.testing.assert_allclose(acc.result(), want, atol=1e-12)


def test_accumulator_refuses_a_skipped_layer():
    rng = np.random.default_rng(4)
    acc = RolloutAccumulator(3)
    acc.update(random_maps(rng, (2, 4, 4)))
    acc.update(random_maps(rng, (2, 4, 4)))
    with pytest.raises(KwsKdError, match="2 layer maps, expected 3"):
        acc.result()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layers": 5}, "out of range"),
        ({"layers": "x"}, "bad layer selection"),
        ({"mode": "cls"}, "unknown rollout mode"),
        ({"head_fusion": "min"}, "unknown head fusion"),
        ({"mask": np.ones(4)}, "mask shape"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    maps = random_maps(np.random.default_rng(5), (3, 2, 5, 5))
    with pytest.raises(KwsKdError, match=message):
        attention_rollout(maps, **kwargs)


def test_interpolate_attention():
    v = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(interpolate_attention(v, 4), v, atol=1e-12)
    # Halving the length: target centres 0.25, 0.75 fall between source centres -> means of pairs.
    np.testing.assert_allclose(interpolate_attention(v, 2), np.array([0.15, 0.35]) / 0.5, atol=1e-12)
    up = interpolate_attention(v, 10)
    assert up.shape == (10,) and up.sum() == pytest.approx(1.0)
    assert np.all(np.diff(up) >= 0)  # monotone input stays monotone


def test_interpolate_attention_zero_mass_rule():
    """One rule: linear sampling that misses every non-zero frame falls back to area; no mass at all is an error."""
    v = np.zeros(400)
    v[1] = 1.0  # 400 -> 50: output centres sample frames 3.5, 11.5, ...: linear sees only zeros
    assert np.interp((np.arange(50) + 0.5) / 50, (np.arange(400) + 0.5) / 400, v).sum() == 0
    out = interpolate_attention(v, 50)
    np.testing.assert_allclose(out, interpolate_attention(v, 50, "area"), atol=1e-15)
    assert out[0] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)  # frame 1 lies in output bin 0
    for bad in (np.zeros(10), -np.ones(10)):
        for method in ("linear", "area"):
            with pytest.raises(KwsKdError, match="no positive mass"):
                interpolate_attention(bad, 5, method)
    with pytest.raises(KwsKdError, match="non-finite"):
        interpolate_attention(np.array([0.5, np.nan]), 3)
    with pytest.raises(KwsKdError, match="unknown interpolation"):
        interpolate_attention(np.ones(3), 3, "cubic")


def test_rollout_cli_on_saved_npy(tmp_path, capsys):
    rng = np.random.default_rng(6)
    maps = random_maps(rng, (2, 3, 2, 6, 6)).astype(np.float32)
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2], dtype=np.int8)
    np.save(tmp_path / "maps.npy", maps)
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "rollout.npy"
    rc = main(["teacher", "rollout", "--attentions", str(tmp_path / "maps.npy"), "--mask", str(tmp_path / "mask.npy"),
               "--out", str(out), "--layers", "top2"])
    assert rc == 0
    got = np.load(out)
    assert got.shape == (2, 6) and got.dtype == np.float32
    for b in range(2):
        np.testing.assert_allclose(got[b], loop_rollout(maps[b].astype(np.float64), mask[b], layers=[1, 2]), atol=1e-6)
    # single clip, last layer raw
    np.save(tmp_path / "one.npy", maps[0])
    assert main(["teacher", "rollout", "--attentions", str(tmp_path / "one.npy"), "--out", str(out), "--mode", "last_layer"]) == 0
    np.testing.assert_allclose(np.load(out), loop_rollout(maps[0].astype(np.float64), mode="last_layer"), atol=1e-6)


def test_rollout_cli_bad_input_is_one_line_error(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.ones((4, 4), np.float32))
    rc = main(["teacher", "rollout", "--attentions", str(tmp_path / "flat.npy"), "--out", str(tmp_path / "o.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "flat.npy" in err and "[layers, heads, T, T]" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.npy").exists()
    maps = random_maps(np.random.default_rng(7), (2, 2, 5, 5))
    np.save(tmp_path / "maps.npy", maps)
    np.save(tmp_path / "mask.npy", np.ones(3))
    rc = main(["teacher", "rollout", "--attentions", str(tmp_path / "maps.npy"), "--mask", str(tmp_path / "mask.npy"),
               "--out", str(tmp_path / "o.npy")])
    assert rc == 2 and "mask.npy" in capsys.readouterr().err
    rc = main(["teacher", "rollout", "--attentions", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o.npy")])
    assert rc == 2 and "missing.npy" in capsys.readouterr().err


def test_interpolation_choices_have_one_meaning():
    """The run option's Literal and the resampler's choices are the same set (the resampler is the one copy)."""
    from typing import get_args

    from kws_kd import distill
    from kws_kd.train_options import Interpolation

    assert get_args(Interpolation) == INTERPOLATIONS
    assert distill.interpolate_attention is interpolate_attention
