"""Att-RNN: kws_streaming's `att_rnn` student (paper recipe, ~496.5K params at 12 labels).

MFCC (20) as [T, 20, 1] -> Conv2D 10 (5,1) relu + BN -> Conv2D 1 (5,1) relu +
BN ('same') -> [T, 20] -> 2 x bidirectional GRU 128 (return sequences) ->
q = Dense(256)(h_middle), a = softmax_t(h_t . q) -> context = sum_t a_t h_t ->
dropout 0.1 -> Dense 64 relu -> Dense 32 (linear) -> Dense(labels).
Its own attention weights a are a_S (n' = frames); nothing is removed by strip.
`heads` > 1 gives MHAtt-RNN (see mhatt_rnn.py), which reports head `attention_head`.

The bidirectional GRU is written as a forward RNN plus a go_backwards RNN whose
output is flipped back to input order, each with its own `GRUCell`, so one set
of weights serves the looped (training) and unrolled (export) graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.errors import KwsKdError
from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import DotAttentionPooling
from kws_kd.students.base import BuildOptions, StudentSpec, features, frames_for, front_end_layers
from kws_kd.students.cells import GRUCell
from kws_kd.students.recurrent import bidirectional, fused_options


@dataclass(frozen=True)
class AttRnnConfig:
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    cnn_filters: tuple[int, ...] = (10, 1)
    cnn_kernels: tuple[tuple[int, int], ...] = ((5, 1), (5, 1))
    rnn_layers: int = 2
    rnn_units: int = 128
    heads: int = 1
    attention_head: int = 0
    dropout: float = 0.1
    units1: int = 64
    units2: int = 32
    spec_augment: bool = True


def make_layers(config: AttRnnConfig, options: BuildOptions) -> dict:
    if not 0 <= config.attention_head < config.heads:
        raise KwsKdError(f"attention_head {config.attention_head} is not one of the {config.heads} heads")
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    for i, (filters, kernel) in enumerate(zip(config.cnn_filters, config.cnn_kernels)):
        layers[f"conv{i}"] = keras.layers.Conv2D(
            filters, tuple(kernel), padding="same", activation="relu", name=f"conv{i}"
        )
        layers[f"bn{i}"] = keras.layers.BatchNormalization(name=f"bn{i}")
    for i in range(config.rnn_layers):
        layers[f"gru{i}_fw_cell"] = GRUCell(config.rnn_units, name=f"gru{i}_fw_cell", dtype="float32")
        layers[f"gru{i}_bw_cell"] = GRUCell(config.rnn_units, name=f"gru{i}_bw_cell", dtype="float32")
    layers["attention"] = DotAttentionPooling(config.heads, config.attention_head, name="attention", dtype="float32")
    layers["dropout"] = keras.layers.Dropout(config.dropout, name="dropout")
    layers["dense1"] = keras.layers.Dense(config.units1, activation="relu", name="dense1")
    layers["dense2"] = keras.layers.Dense(config.units2, name="dense2")
    layers["logits"] = keras.layers.Dense(options.num_labels, name="logits", dtype="float32")
    return layers


def forward(layers: dict, config: AttRnnConfig, audio, options: BuildOptions, attention: bool):
    x = ops.expand_dims(features(layers, audio, options), -1)
    for i in range(len(config.cnn_filters)):
        x = layers[f"bn{i}"](layers[f"conv{i}"](x))
    x = ops.reshape(x, (-1, x.shape[1], x.shape[2] * x.shape[3]))
    for i in range(config.rnn_layers):
        x = bidirectional(
            layers[f"gru{i}_fw_cell"], layers[f"gru{i}_bw_cell"], x, unroll=options.for_export, name=f"gru{i}",
            **fused_options(options),
        )
    context, weights = layers["attention"](x)
    x = layers["dense2"](layers["dense1"](layers["dropout"](context)))
    return layers["logits"](x), (weights if attention else None)


def attention_length(config: AttRnnConfig, clip_samples: int) -> int:
    return frames_for(config, clip_samples)


SPEC = StudentSpec(
    name="att_rnn",
    config_class=AttRnnConfig,
    make_layers=make_layers,
    forward=forward,
    attention_length=attention_length,
    branch=False,
    summary="2 x Conv2D + 2 x BiGRU 128 + dot attention (kws_streaming att_rnn)",
    not_streamable="its recurrence is bidirectional: the backward pass needs the whole clip",
)
