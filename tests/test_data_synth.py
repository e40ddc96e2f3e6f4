"""espeak-ng offline dataset (skips when espeak-ng is not installed)."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from kws_kd.audio import read_audio
from kws_kd.data.speech_commands import read_speech_commands, speaker_of
from kws_kd.data.synth import build_synth, trim

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_synth_layout_levels_and_lists(tmp_path):
    words = ("yes", "no", "bed")
    m = build_synth(tmp_path / "syn", per_word=6, words=words, babble_files=1, babble_seconds=2.0,
                    seed=3, progress=False)
    root = tmp_path / "syn"
    files = sorted(root.glob("*/*_nohash_*.wav"))
    assert len(files) == 18 and {f.parent.name for f in files} == set(words)
    for f in files:
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
        x = read_audio(f)
        peak_db = 20 * np.log10(np.abs(x).max())
        assert -12.5 <= peak_db <= -0.5  # -12..-1 dBFS before resampling; resampling moves peaks a little
        t = trim(x, 0.01)
        assert len(t) < 0.97 * 16000
        # centre-padded: the exact-zero padding before the speech matches the padding after it
        nz = np.flatnonzero(x != 0)
        assert abs(nz[0] - (len(x) - 1 - nz[-1])) < 200
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    spk = lambda rels: {speaker_of(r) for r in rels}  # noqa: E731
    train = [f.relative_to(root).as_posix() for f in files if f.relative_to(root).as_posix() not in val + test]
    assert not (spk(val) & spk(test)) and not (spk(train) & spk(val + test))
    babble = read_audio(root / "_background_noise_" / "babble_000.wav")
    assert len(babble) == 32000 and np.isclose(np.abs(babble).max(), 10 ** (-3 / 20), atol=1e-3)
    again = read_speech_commands(root, labels="35", split_method="lists")
    assert len(again.clips) == 18
    assert m.info["split_method"] == "lists" and m.label_names[:2] == ["_silence_", "_unknown_"]
    # deterministic given the seed
    build_synth(tmp_path / "syn2", per_word=6, words=words, babble_files=0, seed=3, progress=False)
    np.testing.assert_array_equal(read_audio(files[0]), read_audio(tmp_path / "syn2" / files[0].relative_to(root)))


def test_synth_cli_then_check(tmp_path, capsys):
    from kws_kd.cli.main import main

    out = tmp_path / "s"
    args = ["data", "synth", "--out", str(out), "--per-word", "3", "--babble-files", "1", "--babble-seconds", "2"]
    assert main(args) == 0
    assert len(list(out.glob("*/*_nohash_*.wav"))) == 105
    assert main(["data", "check", str(out)]) == 0
    capsys.readouterr()
    assert main(args) == 2  # existing output is refused, not overwritten
    assert "already exists" in capsys.readouterr().err
