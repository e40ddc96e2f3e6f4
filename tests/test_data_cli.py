"""`kws-kd data ...`: exit codes and outputs."""

import shutil

import pytest
from conftest import make_sc_tree

from kws_kd.cli.main import main
from kws_kd.data.load import detect_layout, load_dataset
from kws_kd.data.manifest import read_manifest


@pytest.fixture
def noisy_dir(noise_dir, tmp_path):
    sc_tree = make_sc_tree(tmp_path / "small_sc", words=("yes", "no", "bed"), speakers=12, per_speaker=1)
    out = tmp_path / "noisy"
    rc = main(["data", "noisy", "--speech-commands", str(sc_tree), "--noise", str(noise_dir),
               "--seconds", "2", "--out", str(out), "--seed", "1"])
    assert rc == 0
    return out


def test_noisy_then_check_ok(noisy_dir, capsys):
    m = read_manifest(noisy_dir)
    assert m.info["seconds"] == 2.0 and detect_layout(noisy_dir) == "manifest"
    capsys.readouterr()
    assert main(["data", "check", str(noisy_dir)]) == 0
    out = capsys.readouterr().out
    assert "OK: no problems found" in out
    n_test = len(m.split("test"))
    total_line = [line for line in out.splitlines() if line.startswith("total")][0]
    assert int(total_line.split()[3]) == n_test


def test_check_reports_corrupt_clip(noisy_dir, capsys):
    m = read_manifest(noisy_dir)
    with open(m.clips[3].path, "wb") as f:
        f.write(b"not a wav")
    assert main(["data", "check", str(noisy_dir)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEMS: 1" in out and m.clips[3].path in out


def test_check_reports_wrong_length(noisy_dir, capsys):
    m = read_manifest(noisy_dir)
    shutil.copy(m.clips[1].source, m.clips[0].path)  # a 1 s file inside a 2 s dataset
    assert main(["data", "check", str(noisy_dir)]) == 1
    assert "expected 32000" in capsys.readouterr().out


def test_check_missing_split_list(tmp_path, capsys):
    root = make_sc_tree(tmp_path / "sc", words=("yes", "no", "bed"), speakers=12, per_speaker=1)
    (root / "testing_list.txt").unlink()
    assert main(["data", "check", str(root)]) == 1
    assert "testing_list.txt: split list missing" in capsys.readouterr().out
    assert main(["data", "check", str(root), "--split-method", "speaker-hash"]) == 0


def test_noisy_errors_exit_2_and_write_nothing(sc_tree, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    rc = main(["data", "noisy", "--speech-commands", str(sc_tree), "--noise", str(tmp_path / "empty"),
               "--seconds", "2", "--out", str(out)])
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "noise folder has no audio files" in err


def test_load_dataset_refuses_options_for_materialised(noisy_dir):
    with pytest.raises(Exception, match="takes no reader options"):
        load_dataset(noisy_dir, labels="35")


def test_shared_subset_check(sc_subset, capsys):
    assert main(["data", "check", str(sc_subset)]) == 0
    assert "total" in capsys.readouterr().out
