"""Read and write audio the one way every part of kws-kd agrees on.

Everything downstream (features, teacher, pipeline) assumes float32 mono in
[-1, 1] at 16 kHz. This module is the single gate that turns files into that,
so a stereo file, a corrupt header or a 44.1 kHz clip is caught here with a
message naming the file, instead of surfacing later as a shape error deep in
TensorFlow or torch.

numpy-only (soundfile + soxr): shared by the torch teacher and the TF student.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from kws_kd.atomic import atomic_path
from kws_kd.errors import KwsKdError

SAMPLE_RATE = 16000


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return (sample_rate, channels, frames) of an audio file, or raise KwsKdError."""
    try:
        info = sf.info(str(path))
    except FileNotFoundError:
        raise KwsKdError(f"{path}: no such audio file") from None
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as exc:
        raise KwsKdError(f"{path}: not a readable audio file ({_short(exc)})") from None
    return int(info.samplerate), int(info.channels), int(info.frames)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    *,
    resample: bool = True,
) -> np.ndarray:
    """Read a mono audio file as float32 in [-1, 1] at `sample_rate`.

    Stereo/multichannel files are refused (silently averaging channels would
    hide a wrong file). A file at another rate is resampled with soxr when
    `resample` is true, otherwise refused with its rate named.
    """
    path = Path(path)
    if not path.exists():
        raise KwsKdError(f"{path}: no such audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as exc:
        raise KwsKdError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if data.shape[1] != 1:
        raise KwsKdError(f"{path}: has {data.shape[1]} channels; kws-kd needs mono audio")
    audio = data[:, 0]
    if rate != sample_rate:
        if not resample:
            raise KwsKdError(f"{path}: sample rate is {rate} Hz; expected {sample_rate} Hz")
        audio = resample_audio(audio, rate, sample_rate)
    if not np.all(np.isfinite(audio)):
        raise KwsKdError(f"{path}: contains NaN or infinite samples")
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)


def resample_audio(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a 1-D float signal with soxr (high quality)."""
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), from_rate, to_rate).astype(np.float32)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio in [-1, 1] as a 16-bit PCM WAV, atomically (values are clipped)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise KwsKdError(f"{path}: write_wav needs a 1-D mono signal, got shape {audio.shape}")
    pcm = to_int16(audio)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float [-1, 1] -> int16 PCM: round(x * 32768) clipped to the int16 range (inverse of soundfile's / 32768)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def pad_or_crop(audio: np.ndarray, num_samples: int, *, centre: bool = False) -> np.ndarray:
    """Zero-pad (at the end, or both sides if `centre`) or crop (from the start) to exactly `num_samples`."""
    n = len(audio)
    if n >= num_samples:
        return audio[:num_samples]
    out = np.zeros(num_samples, dtype=np.float32)
    off = (num_samples - n) // 2 if centre else 0
    out[off : off + n] = audio
    return out


def peak_normalise(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale so the absolute peak sits at `dbfs` (e.g. -3.0); silence stays silence."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0.0:
        return audio.astype(np.float32, copy=True)
    return (audio * (10.0 ** (dbfs / 20.0) / peak)).astype(np.float32)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
