"""A toy streamable student, written the way docs/students.md says to add one: this one file.

MFCC (8) -> Dense 8 relu per frame -> GRU 8 -> last output -> Dense(labels).
c' for the attention branch is the GRU's output sequence (n' = frames).
It streams: the carried state is the GRU's h (`stream_step`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import AttentionBranch
from kws_kd.students.base import BuildOptions, StreamStep, StudentSpec, features, frames_for, front_end_layers
from kws_kd.students.recurrent import GRUCell, recurrence


@dataclass(frozen=True)
class ToyConfig:
    front_end: FrontEndConfig = field(default_factory=lambda: FrontEndConfig(num_coeffs=8, mel_bins=16))
    units: int = 8
    spec_augment: bool = False


def make_layers(config: ToyConfig, options: BuildOptions) -> dict:
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    layers["frame_dense"] = keras.layers.Dense(config.units, activation="relu", name="frame_dense")
    layers["cell"] = GRUCell(config.units, name="toy_gru_cell", dtype="float32")
    layers["logits"] = keras.layers.Dense(options.num_labels, name="logits", dtype="float32")
    layers["branch"] = AttentionBranch(dtype="float32")
    return layers


def forward(layers: dict, config: ToyConfig, audio, options: BuildOptions, attention: bool):
    x = layers["frame_dense"](features(layers, audio, options))
    rnn = recurrence(layers["cell"], options, return_sequences=attention, name="gru")
    if attention:
        seq = rnn(x)
        last = seq[:, -1, :]
    else:
        last = rnn(x)
    return layers["logits"](last), (layers["branch"](seq) if attention else None)


def attention_length(config: ToyConfig, clip_samples: int) -> int:
    return frames_for(config, clip_samples)


def stream_step(layers: dict, config: ToyConfig, mfcc) -> StreamStep:
    """One frame: the per-frame Dense, one GRU step, logits from its output."""
    cell = layers["cell"]
    h_in = keras.Input((cell.units,), batch_size=1, name="state_h")
    out, (h,) = cell(layers["frame_dense"](ops.reshape(mfcc, (1, -1))), [h_in])
    return StreamStep({"state_h": h_in}, layers["logits"](out), [h])


SPEC = StudentSpec(
    name="toy_gru",
    config_class=ToyConfig,
    make_layers=make_layers,
    forward=forward,
    attention_length=attention_length,
    branch=True,
    summary="toy: per-frame Dense 8 + GRU 8 (tests only)",
    stream_step=stream_step,
)
