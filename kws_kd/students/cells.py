"""The hand-written recurrent cells: `PeepholeLSTMCell` (LSTM-P) and `GRUCell`.

Why hand-written and not `keras.layers.LSTM` / `GRU`: Keras 3 has no peephole
LSTM and no projection layer (LSTM-P needs both), and its fused layers only
convert to TFLite as a WHILE loop at batch 1, whose full-int8 calibration
crashes. These cells are plain matmuls and element-wise ops, so the same
weights run inside a fast `RNN(unroll=False)` loop for training and inside an
`RNN(unroll=True)` graph for export, which converts with builtin ops in every
quantization mode. The RNN wrapper that runs them (and its fused training loop)
is `kws_kd.students.recurrent`; this file holds only the cells, i.e. the
weights and the one-step maths.

The class names, layer names and weight names are part of every saved weight
file and TFLite export: never rename them. Weights never depend on the
sequence length.
"""

from __future__ import annotations

import keras
from keras import ops

@keras.saving.register_keras_serializable(package="kws_kd")
class PeepholeLSTMCell(keras.layers.Layer):
    """LSTM cell with diagonal peepholes and a linear output projection.

    The maths (gate order i, f, g, o as in Keras):
      i = sigmoid(x W_i + r R_i + b_i + p_i * c_prev)
      f = sigmoid(x W_f + r R_f + b_f + p_f * c_prev)
      c = f * c_prev + i * tanh(x W_g + r R_g + b_g)
      o = sigmoid(x W_o + r R_o + b_o + p_o * c)
      r = (o * tanh(c)) P            (P: units x projection, no bias)
    The output and the recurrent state are the projected `r`; `c` is the cell
    state. This is the classic "LSTMP" cell kws_streaming's LSTM-P uses.
    """

    def __init__(self, units: int, projection: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.projection = int(projection)
        self.state_size = [self.projection, self.units]
        self.output_size = self.projection

    def build(self, input_shape):
        dim = int(input_shape[-1])
        u = self.units
        self.kernel = self.add_weight(shape=(dim, 4 * u), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.projection, 4 * u), initializer="orthogonal", name="recurrent_kernel"
        )

        def bias_init(shape, dtype=None):
            # Forget-gate bias starts at 1 so early training does not forget everything.
            return ops.concatenate([ops.zeros((u,)), ops.ones((u,)), ops.zeros((2 * u,))])

        self.bias = self.add_weight(shape=(4 * u,), initializer=bias_init, name="bias")
        self.peephole = self.add_weight(shape=(3, u), initializer="zeros", name="peephole")
        self.projection_kernel = self.add_weight(
            shape=(u, self.projection), initializer="glorot_uniform", name="projection_kernel"
        )
        self.built = True

    def call(self, inputs, states, training=None):
        r_prev, c_prev = states[0], states[1]
        u = self.units
        z = ops.matmul(inputs, self.kernel) + ops.matmul(r_prev, self.recurrent_kernel) + self.bias
        z_i, z_f, z_g, z_o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
        i = ops.sigmoid(z_i + self.peephole[0] * c_prev)
        f = ops.sigmoid(z_f + self.peephole[1] * c_prev)
        c = f * c_prev + i * ops.tanh(z_g)
        o = ops.sigmoid(z_o + self.peephole[2] * c)
        r = ops.matmul(o * ops.tanh(c), self.projection_kernel)
        return r, [r, c]

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, self.projection), dtype=self.compute_dtype),
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
        ]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "projection": self.projection}


@keras.saving.register_keras_serializable(package="kws_kd")
class GRUCell(keras.layers.Layer):
    """GRU cell with the maths and weight layout of `keras.layers.GRU(reset_after=True)`.

    kernel [in, 3u], recurrent_kernel [u, 3u], bias [2, 3u] (input bias, recurrent
    bias); gate order z, r, h:
      z = sigmoid(x W_z + b_z + h U_z + b'_z)
      r = sigmoid(x W_r + b_r + h U_r + b'_r)
      n = tanh(x W_h + b_h + r * (h U_h + b'_h))
      h_new = z * h + (1 - z) * n
    Same weight shapes as Keras's GRU, so weights can be moved between them.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        dim = int(input_shape[-1])
        u = self.units
        self.kernel = self.add_weight(shape=(dim, 3 * u), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 3 * u), initializer="orthogonal", name="recurrent_kernel")
        self.bias = self.add_weight(shape=(2, 3 * u), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs, states, training=None):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        u = self.units
        x = ops.matmul(inputs, self.kernel) + self.bias[0]
        h = ops.matmul(h_prev, self.recurrent_kernel) + self.bias[1]
        z = ops.sigmoid(x[:, :u] + h[:, :u])
        r = ops.sigmoid(x[:, u : 2 * u] + h[:, u : 2 * u])
        n = ops.tanh(x[:, 2 * u :] + r * h[:, 2 * u :])
        h_new = z * h_prev + (1.0 - z) * n
        return h_new, [h_new]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        return {**super().get_config(), "units": self.units}
