"""MHAtt-RNN: kws_streaming's `att_mh_rnn` student (paper recipe, ~743K params at 12 labels).

Att-RNN with 4 attention heads (one Dense(256) query per head on the middle
frame), the 4 context vectors concatenated, dropout 0.2. a_S is the weights of
one head, `attention_head` (default 0). Shares Att-RNN's layers and wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

from kws_kd.students import att_rnn
from kws_kd.students.base import StudentSpec


@dataclass(frozen=True)
class MhAttRnnConfig(att_rnn.AttRnnConfig):
    heads: int = 4
    attention_head: int = 0
    dropout: float = 0.2


SPEC = StudentSpec(
    name="mhatt_rnn",
    config_class=MhAttRnnConfig,
    make_layers=att_rnn.make_layers,
    forward=att_rnn.forward,
    attention_length=att_rnn.attention_length,
    branch=False,
    summary="Att-RNN with 4 attention heads (kws_streaming att_mh_rnn)",
    not_streamable="its recurrence is bidirectional: the backward pass needs the whole clip",
)
