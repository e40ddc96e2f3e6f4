"""A (k, 1) temporal convolution that trains with time on the width axis.

TC-ResNet convolves [B, T, 1, C] feature maps with (k, 1) kernels. oneDNN's
backward kernels handle that layout poorly on this CPU: one (9, 1) 50->50
convolution at 8 s, batch 32, took 17.6 ms forward + backward, against 11.1 ms
for the same maths on [B, 1, T, C] with a (1, k) kernel (measured in
`benchmarks/train_throughput.py`'s notes). The variable is the same
[k, 1, C_in, C_out] tensor either way; only its view differs.

`time_axis=2` makes the layer take and return [B, 1, T, C]; `time_axis=1` (the
default, every export build) is exactly `keras.layers.Conv2D`. A training
build lays the whole network out with time on the width axis (one reshape
after the front end, which is free: a size-1 axis moves no data).

Why the class is called `Conv2D`: Keras 3 names the entries of a
`.weights.h5` file after each layer's class (`layers/conv2d_3/vars/0`). Keeping
the name keeps training builds, export builds and every run written before
this layer existed loadable into each other.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kws_kd")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a (k, 1) kernel that can run with time on axis 2 (see module docstring)."""

    def __init__(self, *args, time_axis: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if time_axis not in (1, 2):
            raise ValueError(f"time_axis must be 1 or 2, got {time_axis}")
        if time_axis == 2 and (self.kernel_size[1] != 1 or self.strides[1] != 1 or self.data_format != "channels_last"):
            raise ValueError("time_axis=2 needs a (k, 1) kernel, (s, 1) strides and channels_last data")
        self.time_axis = int(time_axis)

    def build(self, input_shape):
        super().build(self._semantic_shape(input_shape))

    def convolution_op(self, inputs, kernel):
        if self.time_axis == 1:
            return super().convolution_op(inputs, kernel)
        k, _, c_in, c_out = kernel.shape
        return ops.conv(
            inputs,
            ops.reshape(kernel, (1, k, c_in, c_out)),
            strides=(1, self.strides[0]),
            padding=self.padding,
            dilation_rate=(1, self.dilation_rate[0]),
            data_format=self.data_format,
        )

    def _semantic_shape(self, shape):
        """[B, 1, T, C] seen as the [B, T, 1, C] the kernel was written for (and back: it is its own inverse)."""
        if self.time_axis == 1:
            return shape
        shape = tuple(shape)
        return (shape[0], shape[2], shape[1], shape[3])

    def compute_output_shape(self, input_shape):
        return self._semantic_shape(super().compute_output_shape(self._semantic_shape(input_shape)))

    def get_config(self):
        return {**super().get_config(), "time_axis": self.time_axis}
