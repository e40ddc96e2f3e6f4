"""LSTM-P: kws_streaming's `lstm_peep` student (paper recipe, ~545.9K params at 12 labels).

MFCC (20) -> LSTM 500 units with peepholes and a 200-unit projection (not
stateful) -> last output -> dropout 0.3 -> Dense(labels).
c' for the attention branch is the LSTM's projected output sequence (n' = frames).
Streams: the carried state is the LSTM's r and c (`stream_step`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras import ops

from kws_kd.features import FrontEndConfig
from kws_kd.students.attention import AttentionBranch
from kws_kd.students.base import BuildOptions, StreamStep, StudentSpec, features, frames_for, front_end_layers
from kws_kd.students.cells import PeepholeLSTMCell
from kws_kd.students.recurrent import recurrence


@dataclass(frozen=True)
class LstmPConfig:
    front_end: FrontEndConfig = field(default_factory=FrontEndConfig)
    units: int = 500
    projection: int = 200
    dropout: float = 0.3
    spec_augment: bool = True


def make_layers(config: LstmPConfig, options: BuildOptions) -> dict:
    layers = front_end_layers(config.front_end, config.spec_augment, options)
    layers["cell"] = PeepholeLSTMCell(config.units, config.projection, name="lstmp_cell", dtype="float32")
    layers["dropout"] = keras.layers.Dropout(config.dropout, name="dropout")
    layers["logits"] = keras.layers.Dense(options.num_labels, name="logits", dtype="float32")
    layers["branch"] = AttentionBranch(dtype="float32")
    return layers


def forward(layers: dict, config: LstmPConfig, audio, options: BuildOptions, attention: bool):
    x = features(layers, audio, options)
    # return_sequences only when the branch needs c'; the inference graph keeps
    # the plain last-output RNN. Both RNN wrappers share the one cell (weights).
    rnn = recurrence(layers["cell"], options, return_sequences=attention, name="lstm")
    if attention:
        seq = rnn(x)
        last = seq[:, -1, :]
    else:
        last = rnn(x)
    logits = layers["logits"](layers["dropout"](last))
    return logits, (layers["branch"](seq) if attention else None)


def attention_length(config: LstmPConfig, clip_samples: int) -> int:
    return frames_for(config, clip_samples)


def stream_step(layers: dict, config: LstmPConfig, mfcc) -> StreamStep:
    """One LSTM-P frame: the cell on this frame's MFCCs, logits from its output (dropout: identity)."""
    cell = layers["cell"]
    r_in = keras.Input((cell.projection,), batch_size=1, name="state_r")
    c_in = keras.Input((cell.units,), batch_size=1, name="state_c")
    out, (r, c) = cell(ops.reshape(mfcc, (1, -1)), [r_in, c_in])
    return StreamStep({"state_r": r_in, "state_c": c_in}, layers["logits"](out), [r, c])


SPEC = StudentSpec(
    name="lstm_p",
    config_class=LstmPConfig,
    make_layers=make_layers,
    forward=forward,
    attention_length=attention_length,
    branch=True,
    summary="LSTM 500 + peepholes + projection 200 (kws_streaming lstm_peep)",
    stream_step=stream_step,
)
