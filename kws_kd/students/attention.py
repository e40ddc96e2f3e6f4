"""Temporal attention: the training-only branch, the pooling Att-RNN uses, and `strip`.

The paper's student attention over n' context vectors c'_1..c'_n' is
    q = Dense(c'_middle),   a_S = softmax_t(c'_t . q)
with c'_middle = c'[n' // 2] (kws_streaming's middle index). For LSTM-P,
TC-ResNet and CRNN this is an extra branch (`AttentionBranch`) used only for
the distillation loss; `strip` rebuilds the logits-only graph from the same
layer objects, so the inference model shares the trained variables and carries
no branch layer or op. Att-RNN and MHAtt-RNN already compute such weights for
their inference path (`DotAttentionPooling`); their a_S is those weights.

The dot products and the weighted sum are written as multiply + reduce_sum:
they lower to TFLite MUL/SUM (builtins, float under dynamic-range quantization).
"""

from __future__ import annotations

import keras
from keras import ops


BRANCH_PREFIX = "att_branch"


def _sequence(x):
    """[B, T, D] as is; [B, T, 1, D] (a CNN feature map) squeezed to [B, T, D]."""
    if len(x.shape) == 4:
        return ops.reshape(x, (-1, x.shape[1], x.shape[2] * x.shape[3]))
    return x


def _query_weights(query_layer, seq):
    middle = seq[:, seq.shape[1] // 2, :]
    q = query_layer(middle)
    return ops.softmax(ops.sum(seq * q[:, None, :], axis=-1), axis=-1)


@keras.saving.register_keras_serializable(package="kws_kd")
class AttentionBranch(keras.layers.Layer):
    """Training-only branch: context sequence [B, n', d'] (or [B, n', 1, d']) -> a_S [B, n']."""

    def __init__(self, query: bool = True, **kwargs):
        kwargs.setdefault("name", BRANCH_PREFIX)
        super().__init__(**kwargs)
        self.use_query = bool(query)  # False: q = c'_middle itself (an ablation; the paper projects it)
        self.query = None

    def build(self, input_shape):
        dim = int(input_shape[-1]) * (int(input_shape[2]) if len(input_shape) == 4 else 1)
        if self.use_query:
            self.query = keras.layers.Dense(dim, name="query", dtype=self.dtype_policy)
            self.query.build((input_shape[0], dim))
        self.built = True

    def call(self, context):
        return _query_weights(self.query or (lambda middle: middle), _sequence(context))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "query": self.use_query}


@keras.saving.register_keras_serializable(package="kws_kd")
class DotAttentionPooling(keras.layers.Layer):
    """Att-RNN / MHAtt-RNN pooling: per head, a_h = softmax(h_t . Dense_h(h_middle)).

    Returns (context [B, heads * D] = concat_h sum_t a_h,t h_t, the weights
    [B, T] of head `attention_head`). No 1/sqrt(d) scaling, as in kws_streaming.
    """

    def __init__(self, heads: int = 1, attention_head: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.heads = int(heads)
        self.attention_head = int(attention_head)
        self.queries = []

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.queries = [keras.layers.Dense(dim, name=f"query_{h}", dtype=self.dtype_policy) for h in range(self.heads)]
        for layer in self.queries:
            layer.build((input_shape[0], dim))
        self.built = True

    def call(self, seq):
        contexts, weights = [], []
        for layer in self.queries:
            w = _query_weights(layer, seq)
            contexts.append(ops.sum(seq * w[:, :, None], axis=1))
            weights.append(w)
        context = contexts[0] if self.heads == 1 else ops.concatenate(contexts, axis=-1)
        return context, weights[self.attention_head]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.heads * input_shape[-1]), (input_shape[0], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "attention_head": self.attention_head}


def strip(model: keras.Model) -> keras.Model:
    """The logits-only inference model of a student, sharing its weights.

    Rebuilds the student's graph with `attention=False` from the very same layer
    objects (so the variables are shared, not copied). For LSTM-P, TC-ResNet and
    CRNN the result is the vanilla student graph: same layers, weights and ops.
    A model that already has no attention output is returned unchanged.
    """
    from kws_kd.students.base import assemble, student_info

    info = student_info(model)
    if not info.attention:
        return model
    return assemble(info.spec, info.config, info.layers, info.options, attention=False)
