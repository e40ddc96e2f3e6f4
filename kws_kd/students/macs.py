"""Analytical multiply-accumulate (MAC) count of one inference, from layer shapes.

Counted: every matmul and convolution (recurrent cells once per time step,
attention queries, dot products and weighted sums, mel filterbank, DCT) and
the spectrum: the two matmul stages of `kws_kd.matmul_dft` that every export
but the dynamic-range one runs (for that RFFT2D form, 2 * N * log2 N real MACs
per frame, a standard radix-2 estimate). Not counted: element-wise ops
(activations, gates' products, BN, which folds into the conv at inference, log,
abs). FLOPs ~= 2 * MACs. Why analytical: the TF profiler cannot see inside a
`while` loop, and the unrolled graph is slow to build at 8 s.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kws_kd.features import MfccFrontEnd
from kws_kd.students.attention import AttentionBranch, DotAttentionPooling
from kws_kd.students.cells import GRUCell, PeepholeLSTMCell


def _shape(tensor):
    return tuple(int(d) if d is not None else 1 for d in tensor.shape)


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one call of `layer` as wired in its (single) functional model."""
    if isinstance(layer, MfccFrontEnd):
        frames = _shape(layer.output)[1]
        if layer.quantization_safe:
            n = layer.config.fft_length
            fft = 2 * n * int(math.log2(n))
        else:
            fft = layer.dft.macs_per_frame()
        mel = layer.mel_weights.size
        dct = layer.dct_weights.size
        return frames * (fft + mel + dct)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin, cout = layer.kernel.shape
        out = _shape(layer.output)
        return int(np.prod(out[1:3])) * kh * kw * cin * cout
    if isinstance(layer, keras.layers.Dense):
        inp = _shape(layer.input)
        return int(np.prod(inp[1:-1])) * layer.kernel.shape[0] * layer.kernel.shape[1]
    if isinstance(layer, keras.layers.RNN):
        steps, dim = _shape(layer.input)[1], _shape(layer.input)[2]
        cell = layer.cell
        if isinstance(cell, PeepholeLSTMCell):
            per_step = (dim + cell.projection) * 4 * cell.units + cell.units * cell.projection
        elif isinstance(cell, GRUCell):
            per_step = (dim + cell.units) * 3 * cell.units
        else:
            raise TypeError(f"no MAC rule for cell {type(cell).__name__}")
        return steps * per_step
    if isinstance(layer, (AttentionBranch, DotAttentionPooling)):
        shape = _shape(layer.input)
        steps, dim = shape[1], int(np.prod(shape[2:]))
        heads = getattr(layer, "heads", 1)
        per_head = dim * dim + steps * dim  # query Dense + dot products
        if isinstance(layer, DotAttentionPooling):
            per_head += steps * dim  # weighted sum
        return heads * per_head
    return 0


def model_macs(model: keras.Model) -> int:
    """Total MACs of one clip through `model` (its batch dimension counted as 1)."""
    return int(sum(layer_macs(layer) for layer in model.layers))
