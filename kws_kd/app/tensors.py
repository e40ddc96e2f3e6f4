"""Tensor conversion between int16 PCM, the model's I/O dtypes and posteriors (numpy only).

The arithmetic rules are the ones `kws_kd.app_logic`'s docstring lists; the
Java classes in `android_harness/.../core/` do the same in the same order.
"""

from __future__ import annotations

import numpy as np

from kws_kd.app.sidecar import Quantization, Sidecar, TensorSpec
from kws_kd.int8 import quantize, round_half_away

PCM_SCALE = 32768.0

__all__ = ["PCM_SCALE", "carried_input", "carried_value", "dequantize_output", "pcm_to_float", "posteriors",
           "prepare_input", "quantize_pcm", "quantize_real", "round_half_away", "sigmoid", "softmax"]


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    return (np.asarray(pcm, dtype=np.int16).astype(np.float32) / np.float32(PCM_SCALE)).astype(np.float32)


def quantize_pcm(pcm: np.ndarray, quant: Quantization) -> np.ndarray:
    """int16 PCM -> int8 model input: ``clamp(round_half_away(pcm / 32768 / scale) + zero_point)`` in float64."""
    return quantize(np.asarray(pcm, dtype=np.int16).astype(np.float64) / PCM_SCALE, quant.scale, quant.zero_point)


def prepare_input(pcm_window: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The model input tensor (flat) for one window of int16 PCM."""
    if spec.dtype == "int8":
        return quantize_pcm(pcm_window, spec.quantization)
    return pcm_to_float(pcm_window)


def dequantize_output(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    raw = np.asarray(raw).reshape(-1)
    if spec.dtype == "int8":
        q = spec.quantization
        return (raw.astype(np.float64) - q.zero_point) * q.scale
    return raw.astype(np.float32).astype(np.float64)


def quantize_real(x: np.ndarray, quant: Quantization) -> np.ndarray:
    """Real values -> int8: ``clamp(round_half_away(x / scale) + zero_point)`` in float64 (as the LiteRT runner)."""
    return quantize(x, quant.scale, quant.zero_point)


def carried_value(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A streaming output as the float32 value carried to the next call (StreamingTFLite._from).

    int8: ``(float32(q) - zero_point) * float32(scale)``, computed in float32.
    """
    raw = np.asarray(raw).reshape(-1)
    if spec.dtype == "int8":
        q = spec.quantization
        return (raw.astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale)
    return raw.astype(np.float32)


def carried_input(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A carried float32 value as the next call's input tensor (StreamingTFLite._to)."""
    if spec.dtype == "int8":
        return quantize_real(value, spec.quantization)
    return np.asarray(value, dtype=np.float32).copy()


def softmax(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    e = np.exp(v - np.max(v))
    total = 0.0
    for x in e:  # same summation order as the Java loop
        total += x
    return e / total


def sigmoid(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-v))


def posteriors(raw: np.ndarray, sidecar: Sidecar) -> np.ndarray:
    values = dequantize_output(raw, sidecar.output)
    if sidecar.output.kind == "probabilities":
        return values
    return sigmoid(values) if sidecar.multi_label else softmax(values)
