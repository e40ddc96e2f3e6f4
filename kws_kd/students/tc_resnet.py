"""TC-ResNet: kws_streaming's `tc_resnet` with the paper's channels 50,50,50,50,50,72,72.

MFCC (40) as [T, 1, 40] (coefficients as channels) -> Conv2D c0 (3,1) + BN +
ReLU -> one residual block per further channel count: two (9,1) convs with BN
(ReLU between and after the add); when the channel count changes the block
strides 2 in time and its shortcut is a 1x1 stride-2 conv + BN + ReLU ->
global average pool -> dropout 0.2 -> 1x1 conv to labels. Convs before BN have
no bias; BN momentum 0.997.
c' for the attention branch is the last block's feature map (n' = frames halved
once per channel change, rounded up: 25 at 1 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import AttentionBranch
from kws_kd.students.base import BuildOptions, StudentSpec, features, frames_for, front_end_layers


@dataclass(frozen=True)
class TcResNetConfig:
    front_end: FrontEndConfig = field(default_factory=lambda: FrontEndConfig(num_coeffs=40))
    channels: tuple[int, ...] = (50, 50, 50, 50, 50, 72, 72)
    first_kernel: int = 3
    kernel: int = 9
    bn_momentum: float = 0.997
    dropout: float = 0.2
    spec_augment: bool = True


def _conv(filters, kernel, stride, name):
    return keras.layers.Conv2D(filters, (kernel, 1), strides=(stride, 1), padding="same", use_bias=False, name=name)


def _bn(config, name):
    return keras.layers.BatchNormalization(momentum=config.bn_momentum, name=name)


def make_layers(config: TcResNetConfig, options: BuildOptions) -> dict:
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    layers["conv0"] = _conv(config.channels[0], config.first_kernel, 1, "conv0")
    layers["bn0"] = _bn(config, "bn0")
    previous = config.channels[0]
    for i, channels in enumerate(config.channels[1:], start=1):
        stride = 1 if channels == previous else 2
        if stride == 2:
            layers[f"block{i}_short_conv"] = _conv(channels, 1, 2, f"block{i}_short_conv")
            layers[f"block{i}_short_bn"] = _bn(config, f"block{i}_short_bn")
        layers[f"block{i}_conv1"] = _conv(channels, config.kernel, stride, f"block{i}_conv1")
        layers[f"block{i}_bn1"] = _bn(config, f"block{i}_bn1")
        layers[f"block{i}_conv2"] = _conv(channels, config.kernel, 1, f"block{i}_conv2")
        layers[f"block{i}_bn2"] = _bn(config, f"block{i}_bn2")
        previous = channels
    layers["pool"] = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")
    layers["dropout"] = keras.layers.Dropout(config.dropout, name="dropout")
    layers["logits_conv"] = keras.layers.Conv2D(options.num_labels, 1, name="logits_conv")
    layers["logits"] = keras.layers.Flatten(name="logits")
    layers["branch"] = AttentionBranch()
    return layers


def forward(layers: dict, config: TcResNetConfig, audio, options: BuildOptions, attention: bool):
    x = features(layers, audio)
    x = ops.reshape(x, (-1, x.shape[1], 1, x.shape[2]))
    x = ops.relu(layers["bn0"](layers["conv0"](x)))
    for i in range(1, len(config.channels)):
        if f"block{i}_short_conv" in layers:
            shortcut = ops.relu(layers[f"block{i}_short_bn"](layers[f"block{i}_short_conv"](x)))
        else:
            shortcut = x
        y = ops.relu(layers[f"block{i}_bn1"](layers[f"block{i}_conv1"](x)))
        y = layers[f"block{i}_bn2"](layers[f"block{i}_conv2"](y))
        x = ops.relu(y + shortcut)
    context = x
    x = layers["dropout"](layers["pool"](context))
    logits = layers["logits"](layers["logits_conv"](x))
    return logits, (layers["branch"](context) if attention else None)


def attention_length(config: TcResNetConfig, clip_samples: int) -> int:
    length = frames_for(config, clip_samples)
    previous = config.channels[0]
    for channels in config.channels[1:]:
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
)
