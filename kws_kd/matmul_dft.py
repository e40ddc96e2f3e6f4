"""STFT magnitude as two small matmuls (a two-stage Cooley-Tukey DFT).

Why: LiteRT's RFFT2D kernel is slow on a phone-class CPU. At 8 s (399 frames of
a 1024-point FFT) it took ~3.5 of TC-ResNet's ~8 ms per inference on this host,
more than the whole int8 network after it. Written as two matmuls, the same
spectrum runs through XNNPACK's GEMM kernels in ~1.5 ms, with builtin ops only
(FULLY_CONNECTED, BATCH_MATMUL, TRANSPOSE, MUL, ADD, SQRT).

The split: N = N1 * N2, time index n = n1 + N1 * n2, frequency k = N2 * k1 + k2.
Then X[k] = sum_n1 W_N^(n1 k) * Y[n1, k2] with Y[n1, k2] = sum_n2 x[n1 + N1 n2] W_N2^(n2 k2):

- stage 1 contracts n2 for every n1 (a [R, 2 N2] real matrix, R = the rows of
  N1 samples that hold the window; the zero padding up to N is never touched);
- stage 2 contracts n1 for every k2 with its own [2 N1, 2 K1] matrix (the
  twiddle W_N^(n1 k2) folded in), a batched matmul over k2. K1 = ceil(bins / N2)
  so only the bins the mel filterbank uses are computed.

The dynamic-range export keeps `tf.signal.stft` (RFFT2D): dynamic-range
quantization would turn these constant-weight matmuls into int8 hybrid ops.
Full int8 keeps the front end float by name scope, so it can use this form.
"""

from __future__ import annotations

import math

import numpy as np


class MatmulDft:
    """Magnitude spectrum |rfft(window * frame, fft_length)| for bins [0, num_bins).

    `n1` (a power of two dividing fft_length) trades constants for speed; the
    default sqrt(N) (32 for 1024) was the fastest measured. Float32 constants:
    N1 = 32 -> 270 KB, N1 = 16 -> 148 KB and ~0.4 ms slower at 8 s.
    """

    def __init__(self, window: np.ndarray, fft_length: int, num_bins: int, n1: int | None = None):
        n = int(fft_length)
        if n & (n - 1) or n < 4:
            raise ValueError(f"fft_length must be a power of two >= 4, got {fft_length}")
        if len(window) > n:
            raise ValueError(f"window of {len(window)} samples is longer than fft_length {n}")
        if not 0 < num_bins <= n // 2 + 1:
            raise ValueError(f"num_bins must be in 1..{n // 2 + 1}, got {num_bins}")
        self.fft_length = n
        self.n1 = n1 or 1 << (int(math.log2(n)) // 2)
        if self.n1 & (self.n1 - 1) or not 1 < self.n1 < n:
            raise ValueError(f"n1 must be a power of two between 2 and {n // 2}, got {n1}")
        self.n2 = n // self.n1
        self.frame_length = len(window)
        self.rows = -(-self.frame_length // self.n1)  # rows of n1 samples that hold the frame
        self.k1 = -(-num_bins // self.n2)
        self.num_bins = num_bins
        padded = np.zeros(self.rows * self.n1, np.float64)
        padded[: self.frame_length] = window
        self.window = padded.reshape(self.rows, self.n1).astype(np.float32)
        self.stage1, self.stage2 = self._matrices()

    def _matrices(self) -> tuple[np.ndarray, np.ndarray]:
        n2 = np.arange(self.rows)[:, None]
        k2 = np.arange(self.n2)[None, :]
        angle = -2.0 * np.pi * n2 * k2 / self.n2
        stage1 = np.concatenate([np.cos(angle), np.sin(angle)], axis=1)  # [R, re | im]
        n1 = np.arange(self.n1)[:, None]
        k1 = np.arange(self.k1)[None, :]
        stage2 = np.zeros((self.n2, 2 * self.n1, 2 * self.k1))
        for k2_ in range(self.n2):
            angle = -2.0 * np.pi * n1 * (self.n2 * k1 + k2_) / self.fft_length
            cos, sin = np.cos(angle), np.sin(angle)
            # (yr + i yi)(cos + i sin) = (yr cos - yi sin) + i (yr sin + yi cos)
            stage2[k2_, : self.n1, : self.k1] = cos
            stage2[k2_, self.n1 :, : self.k1] = -sin
            stage2[k2_, : self.n1, self.k1 :] = sin
            stage2[k2_, self.n1 :, self.k1 :] = cos
        return stage1.astype(np.float32), stage2.astype(np.float32)

    def macs_per_frame(self) -> int:
        """Multiply-accumulates of both matmul stages for one frame."""
        return self.n1 * self.rows * 2 * self.n2 + self.n2 * 2 * self.n1 * 2 * self.k1

    def __call__(self, frames):
        """frames [B, F, frame_length] float32 -> magnitudes [B, F, num_bins]."""
        import tensorflow as tf

        batch, count = tf.shape(frames)[0], tf.shape(frames)[1]
        pad = self.rows * self.n1 - self.frame_length
        if pad:
            frames = tf.pad(frames, [[0, 0], [0, 0], [0, pad]])
        x = tf.reshape(frames, [-1, self.rows, self.n1]) * tf.constant(self.window)
        x = tf.reshape(tf.transpose(x, [0, 2, 1]), [-1, self.rows])  # [B F n1, n2]
        y = tf.matmul(x, tf.constant(self.stage1))  # [B F n1, re|im k2]
        y = tf.transpose(tf.reshape(y, [-1, self.n1, 2, self.n2]), [3, 0, 2, 1])  # [k2, B F, re|im, n1]
        z = tf.matmul(tf.reshape(y, [self.n2, -1, 2 * self.n1]), tf.constant(self.stage2))
        real, imag = z[..., : self.k1], z[..., self.k1 :]
        mag = tf.sqrt(real * real + imag * imag)  # [k2, B F, k1]
        mag = tf.reshape(tf.transpose(mag, [1, 2, 0]), [batch, count, self.k1 * self.n2])  # bin = n2 k1 + k2
        return mag[..., : self.num_bins]
