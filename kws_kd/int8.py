"""The int8 rounding rule shared by the LiteRT runner, the app mirror and the Java app (numpy only).

Real -> integer is ``clamp(round_half_away(x / scale) + zero_point)`` computed
in float64: half away from zero is what TFLite's own quantize op does
(`np.round` sends ties to even: 2.5 -> 2, where TFLite gives 3).
"""

from __future__ import annotations

import numpy as np


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C's round(), TFLite's quantize), in float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Real values -> `dtype`: ``clamp(round_half_away(x / scale) + zero_point)`` to the dtype's range."""
    info = np.iinfo(dtype)
    q = round_half_away(np.asarray(x, dtype=np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)
