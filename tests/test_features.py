"""MFCC front end and SpecAugment: checked against an independent numpy/scipy MFCC."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.signal

tf = pytest.importorskip("tensorflow")

from kws_kd.errors import KwsKdError  # noqa: E402
from kws_kd.features import FrontEndConfig, MfccFrontEnd, SpecAugment, num_frames  # noqa: E402


def reference_mfcc(audio: np.ndarray, cfg: FrontEndConfig) -> np.ndarray:
    """The recipe written out independently: float64 numpy framing/FFT, TF's own mel
    matrix function, scipy's DCT-II with TF's MFCC scaling (1 / sqrt(2 N))."""
    win, hop, nfft = 640, 320, 1024  # 40 ms / 20 ms at 16 kHz, next power of two
    frames = 1 + (audio.shape[-1] - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
    window = scipy.signal.get_window("hann", win, fftbins=True)
    spec = np.abs(np.fft.rfft(audio[..., idx].astype(np.float64) * window, n=nfft))
    mel_w = tf.signal.linear_to_mel_weight_matrix(
        cfg.mel_bins, nfft // 2 + 1, cfg.sample_rate, cfg.lower_hz, cfg.upper_hz, dtype=tf.float64
    ).numpy()
    log_mel = np.log(np.maximum(spec @ mel_w, cfg.log_floor))
    return (scipy.fft.dct(log_mel, type=2, axis=-1) / np.sqrt(2.0 * cfg.mel_bins))[..., : cfg.num_coeffs]


def _audio(batch: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000.0
    tones = sum(0.2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 1250.0, 4100.0))
    return (0.05 * rng.standard_normal((batch, samples)) + tones).astype(np.float32)


@pytest.mark.parametrize("quantization_safe", [False, True])
@pytest.mark.parametrize("num_coeffs", [20, 40])
def test_mfcc_matches_numpy_reference(quantization_safe, num_coeffs):
    cfg = FrontEndConfig(num_coeffs=num_coeffs)
    audio = _audio(2, 16000)
    got = MfccFrontEnd(cfg, quantization_safe=quantization_safe)(audio).numpy()
    ref = reference_mfcc(audio, cfg)
    assert got.shape == (2, 49, num_coeffs) == ref.shape
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("seconds", [1.0, 8.0])
@pytest.mark.parametrize("num_coeffs", [20, 40])
def test_stft_and_matmul_front_ends_agree(seconds, num_coeffs):
    """Training graphs use `tf.signal.stft`, exported files the matmul DFT: the MFCCs must agree (1e-4)."""
    cfg = FrontEndConfig(num_coeffs=num_coeffs)
    audio = _audio(2, int(seconds * 16000), seed=3)
    matmul = MfccFrontEnd(cfg, fft="matmul")(audio).numpy()
    stft = MfccFrontEnd(cfg, fft="stft")(audio).numpy()
    assert matmul.shape == stft.shape == (2, num_frames(audio.shape[1]), num_coeffs)
    np.testing.assert_allclose(stft, matmul, rtol=1e-4, atol=1e-4)
    # and both are the recipe, not merely each other
    np.testing.assert_allclose(stft, reference_mfcc(audio, cfg), rtol=1e-4, atol=1e-4 * np.abs(matmul).max())


def test_unknown_fft_form_is_refused():
    with pytest.raises(KwsKdError, match="fft must be one of matmul, stft"):
        MfccFrontEnd(FrontEndConfig(), fft="fftw")


def test_mfcc_silence_hits_the_log_floor():
    cfg = FrontEndConfig()
    got = MfccFrontEnd(cfg)(np.zeros((1, 8000), np.float32)).numpy()
    ref = reference_mfcc(np.zeros((1, 8000)), cfg)
    # All-zero spectrum: every log-mel is log(1e-12), so only c0 is non-zero.
    assert got[0, 0, 0] == pytest.approx(2 * 40 * np.log(1e-12) / np.sqrt(80.0), rel=1e-5)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_num_frames_and_short_clip_error():
    assert num_frames(16000) == 49
    assert num_frames(8 * 16000) == 399
    assert num_frames(640) == 1
    with pytest.raises(KwsKdError, match="shorter than one 40 ms"):
        num_frames(639)


def test_mfcc_front_end_dynamic_range_tflite_stays_float(tmp_path):
    """The export-mode front end survives dynamic-range quantization: no weight is int8-ised."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    inp = keras.Input((16000,), batch_size=1)
    model = keras.Model(inp, MfccFrontEnd(FrontEndConfig(), quantization_safe=True)(inp))
    model.export(
        str(tmp_path / "sm"),
        format="tf_saved_model",
        input_signature=[tf.TensorSpec([1, 16000], tf.float32)],
        verbose=False,
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "RFFT2D" in ops and not any(op.startswith("FLEX") or op == "CUSTOM" for op in ops)
    audio = _audio(1, 16000, seed=3)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], audio)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    ref = reference_mfcc(audio, FrontEndConfig())
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_export_front_end_uses_a_matmul_and_dynamic_range_safe_switches_it(tmp_path):
    """Outside dynamic-range export the mel step is one matmul: no [frames, bins, mel] tensor.

    The MUL+SUM form materialises frames x bins x mel floats (31 MB at 8 s); the
    default graph must not. `dynamic_range_safe` switches the layer for the
    export block only and restores it afterwards.
    """
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from kws_kd.features import dynamic_range_safe

    cfg = FrontEndConfig()
    inp = keras.Input((16000,), batch_size=1)
    layer = MfccFrontEnd(cfg)
    model = keras.Model(inp, layer(inp))

    def biggest_tensor(safe: bool) -> int:
        with dynamic_range_safe(model, safe) as switched:
            assert switched == 1 and layer.quantization_safe is safe
            model.export(str(tmp_path / f"sm{safe}"), format="tf_saved_model",
                         input_signature=[tf.TensorSpec([1, 16000], tf.float32)], verbose=False)
        assert layer.quantization_safe is False  # restored
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / f"sm{safe}"))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        it = Interpreter(model_content=converter.convert())
        it.allocate_tensors()
        audio = _audio(1, 16000, seed=4)
        it.set_tensor(it.get_input_details()[0]["index"], audio)
        it.invoke()
        np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), reference_mfcc(audio, cfg),
                                   rtol=1e-4, atol=1e-4 * np.abs(reference_mfcc(audio, cfg)).max())
        ops = {op["op_name"] for op in it._get_ops_details()}
        assert ("RFFT2D" in ops) is safe and ("BATCH_MATMUL" in ops) is not safe  # matmul DFT unless safe
        return max(int(np.prod(t["shape"])) for t in it.get_tensor_details())

    frames, mel = num_frames(16000, cfg), cfg.mel_bins
    assert biggest_tensor(False) < frames * 100 * mel  # at most a few [frames, bins] tensors
    assert biggest_tensor(True) >= frames * 400 * mel  # the broadcast product, ~485 bins


@pytest.mark.parametrize("window,fft,bins,n1", [(640, 1024, 487, None), (640, 1024, 513, None), (640, 1024, 487, 16),
                                                (400, 512, 257, None), (400, 512, 100, 64), (5, 8, 3, None),
                                                (16, 16, 9, 2)])
def test_matmul_dft_matches_numpy_rfft(window, fft, bins, n1):
    """Two-stage matmul DFT == |rfft| in float64 numpy, for split sizes that do and do
    not divide the window (400 = 12.5 rows of 32), any batch and a single frame."""
    from kws_kd.features import hann_window
    from kws_kd.matmul_dft import MatmulDft

    rng = np.random.default_rng(7)
    win = hann_window(window)
    dft = MatmulDft(win, fft, bins, n1=n1)
    assert dft.n1 * dft.n2 == fft and dft.rows * dft.n1 >= window and dft.k1 * dft.n2 >= bins
    for shape in [(3, 5, window), (1, 1, window)]:
        frames = rng.standard_normal(shape).astype(np.float32)
        got = dft(tf.constant(frames)).numpy()
        ref = np.abs(np.fft.rfft(frames.astype(np.float64) * win, n=fft))[..., :bins]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-5 * np.abs(ref).max())


def test_matmul_dft_rejects_bad_sizes():
    from kws_kd.matmul_dft import MatmulDft

    with pytest.raises(ValueError, match="power of two"):
        MatmulDft(np.ones(10, np.float32), 12, 5)
    with pytest.raises(ValueError, match="longer than"):
        MatmulDft(np.ones(20, np.float32), 16, 5)
    with pytest.raises(ValueError, match="num_bins"):
        MatmulDft(np.ones(10, np.float32), 16, 10)


def test_spec_augment_is_identity_at_inference():
    x = np.random.default_rng(0).standard_normal((4, 49, 20)).astype(np.float32)
    layer = SpecAugment()
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(layer(x).numpy(), x)


def test_spec_augment_masks_bands_in_training():
    tf.random.set_seed(1)
    x = np.ones((64, 49, 20), np.float32)
    y = SpecAugment()(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, 1.0}
    # A frame is fully zeroed only by a time mask: at most 2 bands of <= 10 frames.
    dead_frames = (y == 0).all(axis=2).sum(axis=1)
    dead_bins = (y == 0).all(axis=1).sum(axis=1)
    assert dead_frames.max() <= 20 and dead_bins.max() <= 10
    assert dead_frames.sum() > 0 and dead_bins.sum() > 0  # masks do happen
    kept = y.reshape(64, -1).mean(axis=1)
    assert kept.min() > 0.2  # never wipes the whole example
