"""MFCC front end and SpecAugment as Keras layers, so every student eats raw audio.

The front end lives inside each model, so a `.tflite` file takes 16 kHz float
audio in [-1, 1] and nothing has to be re-implemented on the phone. It is
written to convert to TFLite *builtin* ops only:

- framing + FFT magnitude: `tf.signal.frame`, then a two-stage DFT written as
  two matmuls (`kws_kd.matmul_dft`: XNNPACK runs it ~2.5x faster than
  LiteRT's RFFT2D kernel). Only the dynamic-range file (`quantization_safe`)
  uses `tf.signal.stft` -> RFFT2D + COMPLEX_ABS, since dynamic-range
  quantization would int8-ise the DFT matrices. Training and evaluation graphs
  (`fft="stft"`, every build but the export one) use `tf.signal.stft` too:
  TensorFlow's own FFT kernel needs far fewer operations than the matmul DFT
  on the host CPU (`benchmarks/train_throughput.py`), and the two forms agree
  within 1e-4 (tests/test_features.py);
- mel filterbank: a matmul (one FULLY_CONNECTED / BATCH_MATMUL in TFLite).
  Only for dynamic-range files (`quantization_safe=True`, set by
  `dynamic_range_safe`) is it a broadcast multiply + reduce_sum instead:
  dynamic-range quantization turns a constant-weight matmul into an int8
  hybrid op, which wrecks the mel energies, while MUL/SUM stay float. That
  form materialises a [frames, bins, mel] tensor (31 MB at 8 s) and is slow,
  so no other mode uses it (full int8 keeps the front end float anyway);
- log: log(max(mel, floor));
- DCT-II: a matmul with a constant matrix (not
  `tf.signal.mfccs_from_log_mel_spectrograms`, which has no builtin lowering);
  multiply + reduce_sum in the dynamic-range form, for the same reason as the mel.

The mel filterbank is the HTK-mel triangular one of
`tf.signal.linear_to_mel_weight_matrix` (triangles in mel space, DC bin
excluded); the DCT is TF's MFCC DCT: DCT-II scaled by 1/sqrt(2 * mel_bins).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Iterator

import keras
import numpy as np

from kws_kd.errors import KwsKdError
from kws_kd.matmul_dft import MatmulDft


@dataclass(frozen=True)
class FrontEndConfig:
    """MFCC recipe; defaults are kws_streaming's paper recipe (FACTS §4)."""

    sample_rate: int = 16000
    window_ms: float = 40.0
    stride_ms: float = 20.0
    mel_bins: int = 40
    lower_hz: float = 20.0
    upper_hz: float = 7600.0
    num_coeffs: int = 20
    log_floor: float = 1e-12

    @property
    def frame_length(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def frame_step(self) -> int:
        return int(round(self.sample_rate * self.stride_ms / 1000.0))

    @property
    def fft_length(self) -> int:
        """Smallest power of two that holds one window (1024 for 640 samples)."""
        return 1 << (self.frame_length - 1).bit_length()

    def to_dict(self) -> dict:
        return asdict(self)


def num_frames(clip_samples: int, config: FrontEndConfig | None = None) -> int:
    """Number of feature frames for a clip (no end padding): 49 for 1 s, 399 for 8 s."""
    config = config or FrontEndConfig()
    if clip_samples < config.frame_length:
        raise KwsKdError(
            f"clip of {clip_samples} samples is shorter than one {config.window_ms:g} ms analysis window"
        )
    return 1 + (clip_samples - config.frame_length) // config.frame_step


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window (what `tf.signal.hann_window` gives by default)."""
    n = np.arange(length)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(config: FrontEndConfig) -> np.ndarray:
    """[fft_length // 2 + 1, mel_bins] triangular HTK-mel filterbank (DC row zero)."""
    num_bins = config.fft_length // 2 + 1
    bin_hz = np.linspace(0.0, config.sample_rate / 2.0, num_bins)
    bin_mel = _hz_to_mel(bin_hz)[1:, None]
    edges = np.linspace(_hz_to_mel(config.lower_hz), _hz_to_mel(config.upper_hz), config.mel_bins + 2)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, config.mel_bins)), weights]).astype(np.float32)


def dct_matrix(num_mel: int, num_coeffs: int) -> np.ndarray:
    """[num_mel, num_coeffs] DCT-II matrix with TF's MFCC scaling (sqrt(2/N) cos)."""
    n = np.arange(num_mel)[:, None]
    k = np.arange(num_coeffs)[None, :]
    return (np.cos(np.pi * k * (2 * n + 1) / (2.0 * num_mel)) * math.sqrt(2.0 / num_mel)).astype(np.float32)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


#: How the magnitude spectrum is computed: "matmul" (the two-matmul DFT every
#: exported file uses) or "stft" (`tf.signal.stft`, for training and evaluation).
FFT_FORMS = ("matmul", "stft")


@keras.saving.register_keras_serializable(package="kws_kd")
class MfccFrontEnd(keras.layers.Layer):
    """Raw audio [B, samples] -> MFCC [B, frames, num_coeffs]; no trainable weights.

    `fft` picks the spectrum's form (`FFT_FORMS`); `quantization_safe` (the
    dynamic-range export) forces RFFT2D and multiply + sum projections.
    """

    def __init__(self, config: FrontEndConfig | dict | None = None, quantization_safe: bool = False,
                 fft: str = "matmul", **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = FrontEndConfig(**config)
        self.config = config or FrontEndConfig()
        if self.config.num_coeffs > self.config.mel_bins:
            raise KwsKdError(f"front end: num_coeffs {self.config.num_coeffs} > mel_bins {self.config.mel_bins}")
        if fft not in FFT_FORMS:
            raise KwsKdError(f"front end: fft must be one of {', '.join(FFT_FORMS)}, got {fft!r}")
        self.fft = fft
        self.quantization_safe = bool(quantization_safe)
        mel = mel_matrix(self.config)
        used = np.nonzero(mel.sum(axis=1) > 0)[0]
        # Only FFT bins inside [lower_hz, upper_hz] carry weight: slice them first.
        self._bin_lo, self._bin_hi = int(used[0]), int(used[-1]) + 1
        self._mel = mel[self._bin_lo : self._bin_hi]
        self._dct = dct_matrix(self.config.mel_bins, self.config.num_coeffs)
        self._window = hann_window(self.config.frame_length)
        self._dft = MatmulDft(self._window, self.config.fft_length, self._bin_hi)

    @property
    def mel_weights(self) -> np.ndarray:
        """[used FFT bins, mel_bins] mel filterbank over the bins the layer computes (read-only)."""
        return _read_only(self._mel)

    @property
    def dct_weights(self) -> np.ndarray:
        """[mel_bins, num_coeffs] DCT-II matrix (read-only)."""
        return _read_only(self._dct)

    @property
    def dft(self) -> MatmulDft:
        """The two-matmul DFT of the export form (`kws_kd.matmul_dft`)."""
        return self._dft

    def call(self, audio):
        import tensorflow as tf

        cfg = self.config
        if self.quantization_safe or self.fft == "stft":
            mag = self.rfft2d_magnitude(audio)
        else:
            frames = tf.signal.frame(audio, cfg.frame_length, cfg.frame_step, pad_end=False)
            mag = self._dft(frames)[..., self._bin_lo :]
        log_mel = tf.math.log(tf.maximum(self._project(mag, self._mel), cfg.log_floor))
        return self._project(log_mel, self._dct)

    def rfft2d_magnitude(self, audio):
        """|STFT| of the used bins through `tf.signal.stft` (RFFT2D + COMPLEX_ABS in TFLite)."""
        import tensorflow as tf

        cfg = self.config
        window = tf.constant(self._window)
        spec = tf.signal.stft(audio, frame_length=cfg.frame_length, frame_step=cfg.frame_step,
                              fft_length=cfg.fft_length, window_fn=lambda length, dtype: window, pad_end=False)
        return tf.abs(spec)[..., self._bin_lo : self._bin_hi]

    def _project(self, x, matrix: np.ndarray):
        """x @ matrix over the last axis: a matmul, or multiply + sum in the dynamic-range-safe form."""
        import tensorflow as tf

        if self.quantization_safe:
            return tf.reduce_sum(x[..., :, None] * tf.constant(matrix), axis=-2)
        return tf.tensordot(x, tf.constant(matrix), axes=1)

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[-1] is None else num_frames(int(input_shape[-1]), self.config)
        return (input_shape[0], frames, self.config.num_coeffs)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(), "quantization_safe": self.quantization_safe,
                "fft": self.fft}


def front_ends(model) -> list[MfccFrontEnd]:
    """The MFCC front-end layers of `model`, nested models included: the one way every part finds them.

    A student has exactly one (`kws_kd.students.base.StudentInfo.front_end` is
    the same layer); the TFLite export keeps these float in int8 files, writes
    their recipe into the sidecar and switches them for dynamic-range export.
    """
    stack, found = list(getattr(model, "layers", [])), []
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, MfccFrontEnd) and layer not in found:
            found.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return found


def front_end_scopes(model) -> list[str]:
    """Names of the model's MFCC front-end layers (kept float inside int8 files)."""
    return [layer.name for layer in front_ends(model)]


def front_end_recipe(model) -> dict:
    """The sidecar's `front_end` entry: the MFCC recipe of the model's front end (the defaults if it has none)."""
    layers = front_ends(model)
    return {"type": "mfcc", **(layers[0].config if layers else FrontEndConfig()).to_dict()}


@contextlib.contextmanager
def dynamic_range_safe(model, on: bool = True) -> Iterator[int]:
    """Within the block, every MFCC layer of `model` uses the dynamic-range-safe mel form.

    Used around SavedModel export for `--quantize dynamic` only (the layer is
    re-traced at export, so the flag decides the exported graph). Yields the
    number of front-end layers switched.
    """
    layers = front_ends(model)
    before = [layer.quantization_safe for layer in layers]
    for layer in layers:
        layer.quantization_safe = bool(on)
    try:
        yield len(layers)
    finally:
        for layer, flag in zip(layers, before):
            layer.quantization_safe = flag


@keras.saving.register_keras_serializable(package="kws_kd")
class SpecAugment(keras.layers.Layer):
    """Zero random time and feature bands of [B, frames, features]; identity unless training.

    Each example gets its own masks: `time_masks` bands of 0..`max_time` frames
    and `freq_masks` bands of 0..`max_freq` feature bins (kws_streaming applies
    them on the MFCCs). At inference the layer adds no op to the graph.
    The masks are drawn from a Keras `SeedGenerator`, whose state is a variable:
    a training checkpoint saves it, so a resumed run draws the same masks as an
    unbroken one.
    """

    def __init__(self, time_masks: int = 2, max_time: int = 10, freq_masks: int = 2, max_freq: int = 5,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.max_time = int(time_masks), int(max_time)
        self.freq_masks, self.max_freq = int(freq_masks), int(max_freq)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _band_keep(self, batch, length, max_width):
        import tensorflow as tf

        width = keras.random.randint([batch, 1], 0, max_width + 1, dtype="int32", seed=self.seed_generator)
        width = tf.minimum(width, length)
        start_frac = keras.random.uniform([batch, 1], seed=self.seed_generator)
        start = tf.cast(tf.floor(start_frac * tf.cast(length - width + 1, tf.float32)), tf.int32)
        pos = tf.range(length)[None, :]
        return tf.cast((pos < start) | (pos >= start + width), tf.float32)

    def call(self, features, training=None):
        if not training:
            return features
        import tensorflow as tf

        shape = tf.shape(features)
        batch, frames, bins = shape[0], shape[1], shape[2]
        keep = tf.ones_like(features)
        for _ in range(self.time_masks):
            keep = keep * self._band_keep(batch, frames, self.max_time)[:, :, None]
        for _ in range(self.freq_masks):
            keep = keep * self._band_keep(batch, bins, self.max_freq)[:, None, :]
        return features * tf.cast(keep, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "max_time": self.max_time,
            "freq_masks": self.freq_masks,
            "max_freq": self.max_freq,
            "seed": self.seed,
        }
