"""Noisy Speech Commands builder and babble: placement, weights, determinism, bad input."""

import numpy as np
import pytest
import soundfile as sf
from conftest import make_noise_dir, make_sc_tree, write_tone

from kws_kd.audio import read_audio
from kws_kd.data.babble import build_babble, make_babble, trim_silence
from kws_kd.data.manifest import read_manifest
from kws_kd.data.noisy import NoiseBank, build_noisy, clip_rng, crop_noise, mix_keyword
from kws_kd.data.speech_commands import read_speech_commands
from kws_kd.errors import KwsKdError


def test_mix_keyword_matches_numpy():
    rng = np.random.default_rng(0)
    kw = rng.uniform(-1, 1, 100).astype(np.float32)
    noise = rng.uniform(-1, 1, 400).astype(np.float32)
    out = mix_keyword(kw, noise, 123)
    want = 0.25 * noise.astype(np.float64)
    want[123:223] += 0.75 * kw
    np.testing.assert_allclose(out, want, atol=1e-6)
    assert np.abs(out).max() <= 1.0
    out2 = mix_keyword(kw, noise, 0, keyword_weight=0.5, noise_weight=0.5)
    np.testing.assert_allclose(out2[:100], 0.5 * kw + 0.5 * noise[:100], atol=1e-6)
    with pytest.raises(KwsKdError):
        mix_keyword(kw, noise, 301)


def test_crop_noise_is_a_window():
    noise = np.arange(1000, dtype=np.float32)
    c = crop_noise(noise, 300, np.random.default_rng(1))
    assert len(c) == 300 and np.all(np.diff(c) == 1) and 0 <= c[0] <= 700
    with pytest.raises(KwsKdError, match="shorter"):
        crop_noise(noise, 1001, np.random.default_rng(1))


def test_build_noisy_places_keyword_and_is_deterministic(noise_dir, tmp_path):
    sc_tree = make_sc_tree(tmp_path / "sc", words=("yes", "no", "up", "bed", "cat"), speakers=12, per_speaker=1)
    m = read_speech_commands(sc_tree, labels="12")
    out = build_noisy(m, noise_dir, 2.0, tmp_path / "n1", seed=7, progress=False)
    assert len(out.clips) == len(m.clips) and out.clip_seconds == 2.0
    assert [c.clip_id for c in out.clips] == [c.clip_id for c in m.clips]
    assert read_manifest(tmp_path / "n1").content_hash() == out.content_hash()
    noises = [read_audio(p) for p in sorted(noise_dir.glob("*.wav"))]
    checked = 0
    for c in out.clips:
        audio = read_audio(c.path)
        assert len(audio) == 32000
        if c.label == "_silence_":
            assert c.keyword_start is None and c.keyword_end is None
            continue
        assert c.source.endswith(".wav") and 0 <= c.keyword_start <= 1.0
        assert c.keyword_end - c.keyword_start == pytest.approx(1.0, abs=1e-5)
        if checked < 5:
            # Recover the noise: outside the keyword the clip is 0.25 * a noise window; inside,
            # subtracting 0.75 * keyword must leave the same window.
            s = int(round(c.keyword_start * 16000))
            kw = read_audio(c.source)[:16000]
            resid = audio.copy()
            resid[s : s + 16000] -= 0.75 * kw
            resid /= 0.25
            found = False
            for n in noises:
                starts = np.flatnonzero(np.abs(n[: len(n) - 32000 + 1] - resid[0]) < 3e-4)
                found |= any(np.max(np.abs(n[k : k + 32000] - resid)) < 3e-4 * 8 for k in starts)
            assert found, c.clip_id
            checked += 1
    again = build_noisy(m, noise_dir, 2.0, tmp_path / "n2", seed=7, progress=False)
    other = build_noisy(m, noise_dir, 2.0, tmp_path / "n3", seed=8, progress=False)
    for a, b, o in zip(out.split("test"), again.split("test"), other.split("test")):
        assert a.keyword_start == b.keyword_start
        np.testing.assert_array_equal(read_audio(a.path), read_audio(b.path))
    assert any(a.keyword_start != o.keyword_start for a, o in zip(out.split("test"), other.split("test")))


def test_per_clip_randomness_is_order_independent():
    a = clip_rng(3, "yes/abc").integers(0, 10**9, 4)
    b = clip_rng(3, "yes/abc").integers(0, 10**9, 4)
    c = clip_rng(3, "yes/abd").integers(0, 10**9, 4)
    assert list(a) == list(b) and list(a) != list(c)


def test_empty_noise_folder(sc_tree, tmp_path):
    (tmp_path / "empty").mkdir()
    m = read_speech_commands(sc_tree)
    with pytest.raises(KwsKdError, match=r"empty: noise folder has no audio files"):
        build_noisy(m, tmp_path / "empty", 2.0, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_noise_shorter_than_d(sc_tree, tmp_path):
    nd = make_noise_dir(tmp_path / "short", seconds=1.5, files=1)
    m = read_speech_commands(sc_tree)
    with pytest.raises(KwsKdError, match=r"noise_0\.wav: noise clip is 1\.50 s, shorter than the 2\.00 s"):
        build_noisy(m, nd, 2.0, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_bad_keyword_file_leaves_nothing(sc_tree, noise_dir, tmp_path):
    (sc_tree / "yes").joinpath(next(iter(sorted((sc_tree / "yes").iterdir()))).name).write_bytes(b"junk")
    m = read_speech_commands(sc_tree)
    with pytest.raises(KwsKdError, match="not a readable audio file"):
        build_noisy(m, noise_dir, 2.0, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_babble_level_and_talker_mix(tmp_path):
    rng = np.random.default_rng(0)
    utts = [write_tone(tmp_path / f"{i}.wav", 0.3, freq=300 + 50 * i) for i in range(10)]
    b = make_babble(utts, 16000, rng, speakers=[str(i) for i in range(10)])
    assert b.shape == (16000,) and np.isclose(np.max(np.abs(b)), 10 ** (-3 / 20), atol=1e-6)
    # several talkers overlap: the spectrum has energy at many of the source tones
    spec = np.abs(np.fft.rfft(b))
    bins = [int((300 + 50 * i) * 16000 / 16000) for i in range(10)]
    strong = sum(spec[k] > 0.05 * spec.max() for k in bins)
    assert strong >= 4
    assert len(trim_silence(np.r_[np.zeros(5000), np.ones(10), np.zeros(5000)].astype(np.float32), margin=0)) == 10


def test_build_babble_writes_folder(tmp_path):
    src = []
    for i in range(6):
        write_tone(tmp_path / "src" / f"{i}.wav", 0.5, freq=200 + 40 * i)
        src.append((str(tmp_path / "src" / f"{i}.wav"), f"s{i}"))
    files = build_babble(src, tmp_path / "bab", num_files=2, seconds=3.0, progress=False)
    assert len(files) == 2
    info = sf.info(str(files[0]))
    assert info.frames == 48000 and info.samplerate == 16000
    bank = NoiseBank.from_dir(tmp_path / "bab", 32000)
    assert len(bank.clips) == 2
    with pytest.raises(KwsKdError, match="already exists"):
        build_babble(src, tmp_path / "bab", num_files=1, seconds=1.0, progress=False)
