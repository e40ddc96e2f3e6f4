"""CRNN: kws_streaming's `crnn` student (paper recipe, ~467.8K params at 12 labels).

MFCC (20) as [T, 20, 1] -> Conv2D 16 (3,3) relu -> Conv2D 16 (5,3) relu ('valid')
-> reshape [T-6, 256] -> GRU 256 -> last output -> dropout 0.1 -> Dense 128
(linear) -> Dense 256 relu -> Dense(labels).
c' for the attention branch is the GRU's output sequence (n' = frames - 6).
Streams: the carried state is the last frames each 'valid' convolution needs,
plus the GRU's h (`stream_step`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import AttentionBranch
from kws_kd.students.base import BuildOptions, StreamStep, StudentSpec, features, frames_for, front_end_layers
from kws_kd.students.cells import GRUCell
from kws_kd.students.recurrent import recurrence


@dataclass(frozen=True)
class CrnnConfig:
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    cnn_filters: tuple[int, ...] = (16, 16)
    cnn_kernels: tuple[tuple[int, int], ...] = ((3, 3), (5, 3))
    gru_units: int = 256
    dropout: float = 0.1
    units1: int = 128
    units2: int = 256
    spec_augment: bool = True


def make_layers(config: CrnnConfig, options: BuildOptions) -> dict:
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    for i, (filters, kernel) in enumerate(zip(config.cnn_filters, config.cnn_kernels)):
        layers[f"conv{i}"] = keras.layers.Conv2D(filters, tuple(kernel), activation="relu", name=f"conv{i}")
    layers["cell"] = GRUCell(config.gru_units, name="gru_cell", dtype="float32")
    layers["dropout"] = keras.layers.Dropout(config.dropout, name="dropout")
    layers["dense1"] = keras.layers.Dense(config.units1, name="dense1")
    layers["dense2"] = keras.layers.Dense(config.units2, activation="relu", name="dense2")
    layers["logits"] = keras.layers.Dense(options.num_labels, name="logits", dtype="float32")
    layers["branch"] = AttentionBranch(dtype="float32")
    return layers


def forward(layers: dict, config: CrnnConfig, audio, options: BuildOptions, attention: bool):
    x = ops.expand_dims(features(layers, audio, options), -1)
    for i in range(len(config.cnn_filters)):
        x = layers[f"conv{i}"](x)
    x = ops.reshape(x, (-1, x.shape[1], x.shape[2] * x.shape[3]))
    rnn = recurrence(layers["cell"], options, return_sequences=attention, name="gru")
    if attention:
        seq = rnn(x)
        last = seq[:, -1, :]
    else:
        last = rnn(x)
    x = layers["dense2"](layers["dense1"](layers["dropout"](last)))
    logits = layers["logits"](x)
    return logits, (layers["branch"](seq) if attention else None)


def attention_length(config: CrnnConfig, clip_samples: int) -> int:
    frames = frames_for(config, clip_samples)
    return frames - sum(int(k[0]) - 1 for k in config.cnn_kernels)


def stream_step(layers: dict, config: CrnnConfig, mfcc) -> StreamStep:
    """One CRNN frame: each 'valid' conv sees its buffered last k-1 input frames + the new one, then one GRU step.

    For the first sum(k - 1) calls the buffers are still filling, so the
    runner keeps h at zero, exactly as the whole-clip model starts its GRU on
    the first complete convolution output.
    """
    x = ops.expand_dims(mfcc, -1)  # [1, 1, coeffs, 1]
    states, nexts, warmup = {}, [], 0
    for i in range(len(config.cnn_filters)):
        k = int(config.cnn_kernels[i][0])
        buf = keras.Input((k - 1, *x.shape[2:]), batch_size=1, name=f"conv{i}_buffer")
        window = ops.concatenate([buf, x], axis=1)  # [1, k, F, C]
        states[f"conv{i}_buffer"] = buf
        nexts.append(window[:, 1:])
        x = layers[f"conv{i}"](window)  # [1, 1, F', C']
        warmup += k - 1
    cell = layers["cell"]
    h_in = keras.Input((cell.units,), batch_size=1, name="state_h")
    states["state_h"] = h_in
    out, (h,) = cell(ops.reshape(x, (1, -1)), [h_in])
    logits = layers["logits"](layers["dense2"](layers["dense1"](out)))
    return StreamStep(states, logits, nexts + [h], warmup, ("state_h",))


SPEC = StudentSpec(
    name="crnn",
    config_class=CrnnConfig,
    make_layers=make_layers,
    forward=forward,
    attention_length=attention_length,
    branch=True,
    summary="2 x Conv2D 16 + GRU 256 + Dense 128/256 (kws_streaming crnn)",
    stream_step=stream_step,
)
