"""kws_kd.audio: the gate every file passes through."""

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone

from kws_kd.audio import pad_or_crop, peak_normalise, read_audio, to_int16, write_wav
from kws_kd.errors import KwsKdError


def test_read_mono_16k_matches_int16_over_32768(tmp_path):
    pcm = np.array([0, 16384, -32768, 32767, -1], dtype=np.int16)
    sf.write(str(tmp_path / "a.wav"), pcm, 16000, subtype="PCM_16")
    x = read_audio(tmp_path / "a.wav")
    assert x.dtype == np.float32 and x.shape == (5,)
    np.testing.assert_allclose(x, pcm / 32768.0, atol=1e-7)


def test_write_then_read_roundtrip_is_exact_to_one_lsb(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, 4000).astype(np.float32)
    write_wav(tmp_path / "o.wav", x)
    info = sf.info(str(tmp_path / "o.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert np.max(np.abs(read_audio(tmp_path / "o.wav") - x)) <= 1 / 32768 + 1e-7
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


def test_to_int16_clips():
    np.testing.assert_array_equal(to_int16(np.array([2.0, -2.0, 0.5])), [32767, -32768, 16384])


def test_wrong_rate_is_resampled(tmp_path):
    write_tone(tmp_path / "t.wav", seconds=0.5, rate=44100, freq=440)
    x = read_audio(tmp_path / "t.wav")
    assert len(x) == 8000
    # the 440 Hz tone survives resampling: the spectrum peaks at 440 Hz
    spec = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spec) * 16000 / len(x) - 440) < 4


def test_wrong_rate_refused_when_asked(tmp_path):
    write_tone(tmp_path / "t.wav", seconds=0.1, rate=8000)
    with pytest.raises(KwsKdError, match=r"t\.wav.*8000 Hz"):
        read_audio(tmp_path / "t.wav", resample=False)


def test_stereo_refused_naming_channels(tmp_path):
    write_tone(tmp_path / "s.wav", seconds=0.1, channels=2)
    with pytest.raises(KwsKdError, match=r"s\.wav.*2 channels"):
        read_audio(tmp_path / "s.wav")


@pytest.mark.parametrize("content", [b"", b"RIFF\x10\x00\x00\x00WAVEjunkjunk", b"hello, not audio at all" * 10])
def test_corrupt_or_non_wav(tmp_path, content):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(KwsKdError, match=r"bad\.wav: not a readable audio file"):
        read_audio(p)


def test_missing_file(tmp_path):
    with pytest.raises(KwsKdError, match="no such audio file"):
        read_audio(tmp_path / "nope.wav")


def test_pad_crop_and_normalise():
    x = np.ones(3, np.float32)
    np.testing.assert_array_equal(pad_or_crop(x, 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(pad_or_crop(x, 7, centre=True), [0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(pad_or_crop(np.arange(5.0), 2), [0, 1])
    y = peak_normalise(np.array([0.1, -0.2], np.float32), -6.0)
    assert np.isclose(np.max(np.abs(y)), 10 ** (-6 / 20))
