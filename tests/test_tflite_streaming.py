"""Streaming LSTM-P: one 20 ms hop per call, state in and out, equals the whole-clip model.

The reference is always the whole-clip Keras model (unrolled, stripped): the
streaming file, fed the clip hop by hop, must end on the same logits.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from kws_kd.errors import KwsKdError  # noqa: E402

SR = 16000
SMALL = {"units": 24, "projection": 16}


def _clips(n: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SR
    out = [0.3 * np.sin(2 * np.pi * f * t) * (t > 0.3) + rng.normal(0, 0.02, samples)
           for f in rng.uniform(200, 3000, n)]
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def lstm_p():
    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student, make_config

    keras.utils.set_random_seed(3)
    return strip(build_student("lstm_p", 12, SR, make_config("lstm_p", SMALL), for_export=True))


@pytest.fixture(scope="module")
def files(lstm_p, tmp_path_factory):
    from kws_kd.tflite.streaming import convert_streaming

    root = tmp_path_factory.mktemp("stream")
    outputs = {m: root / f"lstm_p_{m}.tflite" for m in ("float32", "int8")}
    layout = convert_streaming(lstm_p, outputs, calibration_audio=_clips(6, SR, seed=5), label="lstm_p",
                               log=lambda *a: None)
    return outputs, layout


def test_keras_streaming_model_walks_the_same_frames(lstm_p):
    """Frame by frame through the one-frame Keras model == the whole-clip model (pure Keras, no TFLite)."""
    from kws_kd.tflite.streaming import build_streaming_model
    from kws_kd.tflite.verify import keras_logits

    model, layout = build_streaming_model(lstm_p)
    assert (layout.hop_samples, layout.window_samples) == (320, 640) and layout.frames(SR) == 49
    assert layout.states == {"state_r": (16,), "state_c": (24,)} and layout.warmup_frames == 0
    clip = _clips(1, SR)[0]
    tail, state = clip[None, :320], [np.zeros((1, 16), np.float32), np.zeros((1, 24), np.float32)]
    for k in range(layout.frames(SR)):
        hop = clip[None, 320 + 320 * k : 640 + 320 * k]
        logits, tail, *state = [np.asarray(o) for o in model([hop, tail, *state], training=False)]
    np.testing.assert_allclose(logits, keras_logits(lstm_p, clip[None]), atol=1e-5)


def test_float32_streaming_file_equals_whole_clip_keras(lstm_p, files):
    from kws_kd.tflite.runner import op_counts
    from kws_kd.tflite.streaming import StreamingTFLite
    from kws_kd.tflite.verify import keras_logits

    outputs, layout = files
    clips = _clips(3, SR, seed=9)
    got = StreamingTFLite(outputs["float32"], layout).logits_batch(clips)
    np.testing.assert_allclose(got, keras_logits(lstm_p, clips), atol=1e-4)
    ops = op_counts(outputs["float32"])
    # One frame of the graph: the LSTM's matmuls appear a handful of times, not once per frame (49).
    assert ops.get("FULLY_CONNECTED", 0) + ops.get("BATCH_MATMUL", 0) < 10
    assert "WHILE" not in ops and not any(op.startswith("Flex") for op in ops)


def test_int8_streaming_file_tracks_float(lstm_p, files):
    """int8 (float I/O, state requantized every call) stays close to the float model over 49 frames."""
    from kws_kd.tflite.streaming import StreamingTFLite
    from kws_kd.tflite.verify import keras_logits

    outputs, layout = files
    clips = _clips(4, SR, seed=11)
    got = StreamingTFLite(outputs["int8"], layout).logits_batch(clips)
    ref = keras_logits(lstm_p, clips)
    assert np.all(np.isfinite(got)) and got.shape == ref.shape
    assert np.max(np.abs(got - ref)) < 0.25 * max(1.0, float(np.max(np.abs(ref))))
    assert outputs["int8"].stat().st_size < outputs["float32"].stat().st_size


@pytest.mark.parametrize("name", ["att_rnn", "mhatt_rnn", "tc_resnet"])
def test_non_streamable_students_get_a_clear_error(name):
    from kws_kd.tflite.streaming import check_streamable

    with pytest.raises(KwsKdError, match=f"--streaming: {name} cannot stream.*streamable students: lstm_p, crnn"):
        check_streamable(name)


def test_crnn_streams_with_conv_buffers_and_a_warm_up():
    """CRNN: each 'valid' conv keeps its last k-1 input frames; the GRU waits 2 + 4 frames, as the whole clip does.

    Float32 through LiteRT, hop by hop, ends on the whole-clip Keras logits;
    so does int8 within a loose bound.
    """
    import tempfile
    from pathlib import Path

    from kws_kd.students.attention import strip
    from kws_kd.students.registry import build_student, make_config
    from kws_kd.tflite.streaming import StreamingTFLite, convert_streaming
    from kws_kd.tflite.verify import keras_logits

    keras.utils.set_random_seed(4)
    crnn = strip(build_student("crnn", 12, SR, make_config("crnn", {"gru_units": 16, "units1": 16, "units2": 16}),
                               for_export=True))
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {m: Path(tmp) / f"crnn_{m}.tflite" for m in ("float32", "int8")}
        layout = convert_streaming(crnn, outputs, calibration_audio=_clips(6, SR, seed=5), label="crnn",
                                   log=lambda *a: None)
        assert layout.warmup_frames == 6 and layout.recurrent == ("state_h",)
        assert layout.states == {"conv0_buffer": (2, 20, 1), "conv1_buffer": (4, 18, 16), "state_h": (16,)}
        clips = _clips(3, SR, seed=13)
        ref = keras_logits(crnn, clips)
        np.testing.assert_allclose(StreamingTFLite(outputs["float32"], layout).logits_batch(clips), ref, atol=1e-4)
        got8 = StreamingTFLite(outputs["int8"], layout).logits_batch(clips)
        assert np.max(np.abs(got8 - ref)) < 0.25 * max(1.0, float(np.max(np.abs(ref))))
