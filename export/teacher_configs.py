"""The teacher's built-in wav2vec 2.0 shapes, and what makes two teachers the same shape (torch-free).

`NAMED_CONFIGS` are the `--config` choices of `kws-kd teacher finetune`;
`config_shape` is the part of a config a state dict depends on (`--init-from`
is refused across shapes).
"""

from __future__ import annotations

from transformers import Wav2Vec2Config

from kws_kd.errors import KwsKdError

_STANDARD_KERNELS = (10, 3, 3, 3, 3, 2, 2)
_STANDARD_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def named_config(name: str) -> Wav2Vec2Config:
    """A new copy of one of the built-in shapes (`NAMED_CONFIGS`). All use the standard 320-sample hop (50 frames/s)."""
    common = dict(
        conv_kernel=_STANDARD_KERNELS,
        conv_stride=_STANDARD_STRIDES,
        layerdrop=0.0,
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
        vocab_size=32,
    )
    if name == "tiny":
        # Tests only: random, no download, a fraction of a second per forward.
        return Wav2Vec2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16,) * 7, conv_bias=False, feat_extract_norm="group", do_stable_layer_norm=False,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **common,
        )
    if name == "small-cpu":
        # The reference teacher trained from scratch on CPU. Group-norm encoder and post-LN:
        # the XLSR pre-LN shape does not train from scratch. The conv encoder's width
        # dominates CPU cost, so it is narrow.
        return Wav2Vec2Config(
            hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
            conv_dim=(32, 32, 64, 64, 64, 64, 64), conv_bias=False, feat_extract_norm="group",
            do_stable_layer_norm=False, num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16,
            hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.0,
            final_dropout=0.1, **common,
        )
    if name == "small-cpu-fast":
        # small-cpu with a cheaper conv feature encoder: 5 layers instead of 7, strides
        # (10,4,2,2,2) instead of (5,2,2,2,2,2,2). Same total stride 320 (50 frames/s) and a
        # receptive field of 360 samples, so 1 s still gives 49 frames and 8 s 399; the first
        # layer's output (group-normed, the largest activation) is half as long. Transformer,
        # head and dropouts as in small-cpu. See benchmarks/teacher_finetune.py for its cost.
        cfg = named_config("small-cpu")
        cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride = (32, 64, 64, 64, 64), (10, 4, 3, 2, 2), (10, 4, 2, 2, 2)
        cfg.num_feat_extract_layers = len(cfg.conv_dim)
        return cfg
    if name == "xlsr-300m-shape":
        # Random weights in the shape of wav2vec2-xls-r-300m, for benchmarks.
        return Wav2Vec2Config(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
            conv_dim=(512,) * 7, conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
            num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, **common,
        )
    raise KwsKdError(f"unknown teacher config {name!r}; expected one of {', '.join(NAMED_CONFIGS)} or a local checkpoint folder")


NAMED_CONFIGS = ("tiny", "small-cpu", "small-cpu-fast", "xlsr-300m-shape")

# What makes two teachers "the same shape": a state dict of one loads into the other.
SHAPE_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim", "conv_kernel",
    "conv_stride", "conv_bias", "feat_extract_norm", "do_stable_layer_norm", "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
)


def config_shape(cfg: Wav2Vec2Config | dict) -> dict:
    """The SHAPE_KEYS of a config (object or config.json dict), tuples as lists."""
    get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
    out = {}
    for k in SHAPE_KEYS:
        v = get(k, None)
        out[k] = list(v) if isinstance(v, (list, tuple)) else v
    return out
