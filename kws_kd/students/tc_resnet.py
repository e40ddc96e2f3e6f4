"""TC-ResNet: kws_streaming's `tc_resnet` with the paper's channels 50,50,50,50,50,72,72.

MFCC (40) as [T, 1, 40] (coefficients as channels) -> Conv2D c0 (3,1) + BN +
ReLU -> one residual block per further channel count: two (9,1) convs with BN
(ReLU between and after the add); when the channel count changes the block
strides 2 in time and its shortcut is a 1x1 stride-2 conv + BN + ReLU ->
global average pool -> dropout 0.2 -> 1x1 conv to labels. Convs before BN have
no bias; BN momentum 0.997.
c' for the attention branch is the last block's feature map (n' = frames halved
once per channel change, rounded up: 25 at 1 s).

A training build (`BuildOptions.fast_graph`) lays the network out as
[B, 1, T, C] (time on the width axis, `kws_kd.students.time_conv`), which the
CPU's convolution kernels train ~1.6x faster; weights and outputs are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.errors import KwsKdError
from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import AttentionBranch
from kws_kd.students.base import BuildOptions, StudentSpec, features, frames_for, front_end_layers
from kws_kd.students.time_conv import Conv2D


@dataclass(frozen=True)
class TcResNetConfig:
    front_end: FrontEndConfig = field(default_factory=lambda: FrontEndConfig(num_coeffs=40))
    channels: tuple[int, ...] = (50, 50, 50, 50, 50, 72, 72)
    first_kernel: int = 3
    kernel: int = 9
    bn_momentum: float = 0.997
    dropout: float = 0.2
    spec_augment: bool = True
    # The distillation branch reads c' after residual block `branch_block` (1-based; None: the last)
    # and projects c'_middle through a Dense query (`branch_query`); both exist for ablations.
    branch_block: int | None = None
    branch_query: bool = True


def _time_axis(options: BuildOptions) -> int:
    return 2 if options.fast_graph else 1


def _conv(filters, kernel, stride, name, options, **kwargs):
    return Conv2D(filters, (kernel, 1), strides=(stride, 1), padding="same", use_bias=False, name=name,
                  time_axis=_time_axis(options), **kwargs)


def _bn(config, name, **kwargs):
    return keras.layers.BatchNormalization(momentum=config.bn_momentum, name=name, **kwargs)


def make_layers(config: TcResNetConfig, options: BuildOptions) -> dict:
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    # The first conv stays float32 under mixed_bfloat16: raw MFCCs carry large offsets (c0 ~ -50),
    # and BN subtracts them after the conv, so bfloat16's 0.4 % rounding of the offset would
    # become a sizeable share of what is left (gradient cosine to float32 0.86 -> see tests).
    layers["conv0"] = _conv(config.channels[0], config.first_kernel, 1, "conv0", options, dtype="float32")
    layers["bn0"] = _bn(config, "bn0", dtype="float32")
    previous = config.channels[0]
    for i, channels in enumerate(config.channels[1:], start=1):
        stride = 1 if channels == previous else 2
        if stride == 2:
            layers[f"block{i}_short_conv"] = _conv(channels, 1, 2, f"block{i}_short_conv", options)
            layers[f"block{i}_short_bn"] = _bn(config, f"block{i}_short_bn")
        layers[f"block{i}_conv1"] = _conv(channels, config.kernel, stride, f"block{i}_conv1", options)
        layers[f"block{i}_bn1"] = _bn(config, f"block{i}_bn1")
        layers[f"block{i}_conv2"] = _conv(channels, config.kernel, 1, f"block{i}_conv2", options)
        layers[f"block{i}_bn2"] = _bn(config, f"block{i}_bn2")
        previous = channels
    layers["pool"] = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")
    layers["dropout"] = keras.layers.Dropout(config.dropout, name="dropout")
    # float32 from here on: the 1x1 logits conv is tiny, and softmax/KL want full precision.
    layers["logits_conv"] = keras.layers.Conv2D(options.num_labels, 1, name="logits_conv", dtype="float32")
    layers["logits"] = keras.layers.Flatten(name="logits", dtype="float32")
    if config.branch_block is not None and not 1 <= config.branch_block < len(config.channels):
        raise KwsKdError(f"tc_resnet: branch_block must be in 1..{len(config.channels) - 1}, got {config.branch_block}")
    layers["branch"] = AttentionBranch(query=config.branch_query, dtype="float32")
    return layers


def forward(layers: dict, config: TcResNetConfig, audio, options: BuildOptions, attention: bool):
    x = features(layers, audio, options)
    frames, coeffs = x.shape[1], x.shape[2]
    # [B, T, 1, C], or [B, 1, T, C] in a fast training graph: the same memory either way.
    x = ops.reshape(x, (-1, frames, 1, coeffs) if _time_axis(options) == 1 else (-1, 1, frames, coeffs))
    x = ops.relu(layers["bn0"](layers["conv0"](x)))
    for i in range(1, len(config.channels)):
        if f"block{i}_short_conv" in layers:
            shortcut = ops.relu(layers[f"block{i}_short_bn"](layers[f"block{i}_short_conv"](x)))
        else:
            shortcut = x
        y = ops.relu(layers[f"block{i}_bn1"](layers[f"block{i}_conv1"](x)))
        y = layers[f"block{i}_bn2"](layers[f"block{i}_conv2"](y))
        x = ops.relu(y + shortcut)
        if i == (config.branch_block or len(config.channels) - 1):
            context = ops.reshape(x, (-1, x.shape[1] * x.shape[2], x.shape[3]))  # [B, n', C] in either layout
    x = layers["dropout"](layers["pool"](x))
    logits = layers["logits"](layers["logits_conv"](x))
    return logits, (layers["branch"](context) if attention else None)


def attention_length(config: TcResNetConfig, clip_samples: int) -> int:
    length = frames_for(config, clip_samples)
    previous = config.channels[0]
    for channels in config.channels[1 : 1 + (config.branch_block or len(config.channels) - 1)]:
        if channels != previous:
            length = math.ceil(length / 2)
        previous = channels
    return length


SPEC = StudentSpec(
    name="tc_resnet",
    config_class=TcResNetConfig,
    make_layers=make_layers,
    forward=forward,
    attention_length=attention_length,
    branch=True,
    summary="temporal-conv ResNet, channels 50x5 + 72x2 (kws_streaming tc_resnet)",
    not_streamable="its strided time convolutions would need per-layer phase state (not built)",
    # kws_streaming trains TC-ResNet with SGD + momentum, the others with Adam.
    default_optimizer="sgd",
    # The paper's BN momentum (0.997) needs thousands of steps before its moving
    # statistics forget their initial values: after 200 steps 55 % of them is still
    # the initial mean 0 / variance 1, and validation sits at chance (measured: 9.0 %
    # test accuracy after 200 steps at 8 s, 27.5 % with 0.9 and Adam).
    short_run_config={"bn_momentum": 0.9},
)
