"""Input quantization of the LiteRT runner matches TFLite and the Android app (ties away from zero)."""

from __future__ import annotations

import numpy as np


def test_input_quantization_rounds_ties_away_from_zero_like_tflite_and_the_app():
    from kws_kd.int8 import quantize as quantize_input, round_half_away

    np.testing.assert_array_equal(round_half_away(np.array([2.5, -2.5, 0.5, -0.5, 1.4999, -1.6])),
                                  [3.0, -3.0, 1.0, -1.0, 1.0, -2.0])
    q = quantize_input(np.array([0.25, -0.25, 1.0, -1.0]), 0.1, 0, np.int8)  # 2.5 -> 3, 10 -> 10
    assert q.dtype == np.int8 and q.tolist() == [3, -3, 10, -10]
    assert quantize_input(np.array([100.0, -100.0]), 0.1, 3, np.int8).tolist() == [127, -128]
