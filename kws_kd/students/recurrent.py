"""The recurrence wrapper of the students: `RNN`, and the builders `recurrence` / `bidirectional`.

The cells themselves (`PeepholeLSTMCell`, `GRUCell`: weights and one-step
maths) are in `kws_kd.students.cells`, re-exported here so that imports of
them from this module keep working. `RNN(cell, fused=True)` below is a drop-in
`keras.layers.RNN` whose training loop for these two cells is hand-fused
(hoisted input projection, hand-written BPTT: `kws_kd.students.fused_bptt`);
export builds unroll every step instead (no WHILE op in TFLite).

Weights never depend on the sequence length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from kws_kd.students.cells import GRUCell, PeepholeLSTMCell
from kws_kd.students.fused_bptt import gru_recurrence, lstmp_recurrence, project_inputs

if TYPE_CHECKING:
    from kws_kd.students.base import BuildOptions

__all__ = ["MATMUL_DTYPES", "RNN", "GRUCell", "PeepholeLSTMCell", "bidirectional", "fused_options", "recurrence"]

MATMUL_DTYPES = ("float32", "bfloat16")


def recurrence(cell: keras.layers.Layer, options: BuildOptions, **kwargs) -> RNN:
    """The recurrence wrapper of a student build (`kws_kd.students.base.BuildOptions`).

    Training graphs (`fast_graph`) run the fused loop, in bfloat16 matmuls under
    `mixed_bfloat16`; export builds unroll every time step (no WHILE op in TFLite).
    """
    return RNN(cell, unroll=options.for_export, **fused_options(options), **kwargs)


def fused_options(options: BuildOptions) -> dict:
    """`RNN`'s `fused` and `matmul_dtype` for a build's options."""
    return {"fused": bool(options.fast_graph),
            "matmul_dtype": "bfloat16" if options.precision == "mixed_bfloat16" else "float32"}


def bidirectional(forward_cell: keras.layers.Layer, backward_cell: keras.layers.Layer, sequence, *, unroll: bool,
                  name: str, fused: bool = False, matmul_dtype: str = "float32"):
    """Bidirectional RNN over [B, T, D] -> [B, T, 2 * units] (forward then backward features).

    Same result as `keras.layers.Bidirectional(..., merge_mode="concat")`, built
    from two plain `RNN` wrappers: the backward one reads the sequence in reverse
    (`go_backwards`) and its outputs are flipped back into input order. Written out
    so that the cells (the weights) stay ours and are shared between builds.
    """
    from keras import ops

    kw = {"unroll": unroll, "fused": fused, "matmul_dtype": matmul_dtype, "return_sequences": True}
    fw = RNN(forward_cell, name=f"{name}_fw", **kw)(sequence)
    bw = RNN(backward_cell, go_backwards=True, name=f"{name}_bw", **kw)(sequence)
    return ops.concatenate([fw, ops.flip(bw, axis=1)], axis=-1)


@keras.saving.register_keras_serializable(package="kws_kd")
class RNN(keras.layers.RNN):
    """`keras.layers.RNN` with an optional fused training loop for our two cells.

    Why it exists: the generic Keras loop runs `x_t W` inside every time step, and
    autodiff of that loop computes per-step weight gradients and sums them with
    AddN, which dominates the cost of an 8 s clip (~400 steps). With
    `fused=True` (and `unroll=False`) for a `GRUCell` or `PeepholeLSTMCell`, the
    input projection of all frames is ONE matmul before the loop, each step does
    only the recurrent matmul(s) and gate maths, and a hand-written
    backward-through-time loop (`kws_kd.students.fused_bptt`) leaves the
    recurrent weight gradients to one matmul over all steps after the loop.
    `matmul_dtype="bfloat16"` runs those matmuls with bfloat16 operands (CPU
    AMX / AVX512-BF16); the carried state and element-wise maths stay float32.

    Anything the fused path does not handle (a mask, an initial state,
    `return_state`, `stateful`, another cell type or dtype, `unroll=True`) goes to
    `keras.layers.RNN.call`: slower, never a different result.

    Why the name is exactly `RNN`: Keras 3 derives the paths inside `.weights.h5`
    files from snake-cased class names (`layers/rnn/cell/vars/0`), so a model built
    with this class saves and loads weights interchangeably with one built with
    `keras.layers.RNN` (older runs, and `unroll=True` export builds).
    """

    def __init__(self, cell, *args, fused: bool = False, matmul_dtype: str = "float32", **kwargs):
        if matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}, got {matmul_dtype!r}")
        super().__init__(cell, *args, **kwargs)
        self.fused = bool(fused)
        self.matmul_dtype = matmul_dtype

    def _can_fuse(self, sequences, initial_state, mask) -> bool:
        """True when the fused path gives exactly what `keras.layers.RNN.call` would."""
        return (
            self.fused
            and not self.unroll
            and type(self.cell) in (GRUCell, PeepholeLSTMCell)
            and initial_state is None
            and mask is None
            and not self.return_state
            and not self.stateful
            and self.cell.compute_dtype == "float32"
            and self.compute_dtype == "float32"
            and len(sequences.shape) == 3
            and sequences.dtype == "float32"
        )

    def call(self, sequences, initial_state=None, mask=None, training: bool | None = None):
        """The fused loop where `_can_fuse` allows it, else `keras.layers.RNN.call` unchanged.

        Outputs as `keras.layers.RNN`: [B, T, out] in processing order with
        `return_sequences` (reversed input order when `go_backwards`), else the
        last processed step [B, out]. The cells have no dropout, so `training`
        changes nothing on the fused path."""
        if not self._can_fuse(sequences, initial_state, mask):
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        import tensorflow as tf

        mm = tf.bfloat16 if self.matmul_dtype == "bfloat16" else tf.float32
        x = tf.transpose(sequences, [1, 0, 2])  # time-major [T, B, D]
        if self.go_backwards:
            x = tf.reverse(x, axis=[0])
        cell = self.cell
        kernel = tf.convert_to_tensor(cell.kernel)
        if isinstance(cell, GRUCell):
            bias = tf.convert_to_tensor(cell.bias)
            xp = project_inputs(x, kernel, bias[0], mm)
            outputs = gru_recurrence(xp, tf.convert_to_tensor(cell.recurrent_kernel), bias[1], mm)
        else:
            xp = project_inputs(x, kernel, tf.convert_to_tensor(cell.bias), mm)
            outputs = lstmp_recurrence(
                xp,
                tf.convert_to_tensor(cell.recurrent_kernel),
                tf.convert_to_tensor(cell.peephole),
                tf.convert_to_tensor(cell.projection_kernel),
                mm,
            )
        # The while loop's TensorArray forgets the static time length; later layers need it.
        outputs = tf.ensure_shape(outputs, [sequences.shape[1], sequences.shape[0], outputs.shape[-1]])
        if self.return_sequences:
            return tf.transpose(outputs, [1, 0, 2])  # processing order, as keras.layers.RNN
        return outputs[-1]

    def get_config(self) -> dict:
        return {**super().get_config(), "fused": self.fused, "matmul_dtype": self.matmul_dtype}

