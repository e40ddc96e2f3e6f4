"""Stage caching: finished stages are reused, changed parameters rerun, failures leave nothing."""

import json

import pytest

from kws_kd.stages import MARKER, StageRunner


def _builder(calls, value):
    def build(tmp):
        calls.append(value)
        (tmp / "out.txt").write_text(str(value))
        return {"value": value}

    return build


def test_second_run_reuses_finished_stage(tmp_path):
    calls = []
    first = StageRunner(tmp_path, log=lambda s: None).run("a", {"x": 1}, _builder(calls, 1))
    second = StageRunner(tmp_path, log=lambda s: None).run("a", {"x": 1}, _builder(calls, 2))
    assert calls == [1]
    assert second.cached and not first.cached
    assert second.path == first.path
    assert (second.path / "out.txt").read_text() == "1"
    assert second.summary == {"value": 1}


def test_changed_params_or_upstream_rerun(tmp_path):
    calls = []
    runner = StageRunner(tmp_path, log=lambda s: None)
    up1 = runner.run("up", {"n": 1}, _builder(calls, "u1"))
    down1 = runner.run("down", {}, _builder(calls, "d1"), upstream=[up1])
    up2 = runner.run("up", {"n": 2}, _builder(calls, "u2"))
    down2 = runner.run("down", {}, _builder(calls, "d2"), upstream=[up2])
    assert calls == ["u1", "d1", "u2", "d2"]
    assert down1.key != down2.key and down1.path != down2.path


def test_failed_stage_is_not_finished_and_resumes_with_its_partial_work(tmp_path):
    runner = StageRunner(tmp_path, log=lambda s: None)

    def boom(folder):
        (folder / "partial").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        runner.run("a", {}, boom)
    (folder,) = tmp_path.iterdir()
    assert not (folder / MARKER).exists()

    seen = []

    def resume(folder):
        seen.append((folder / "partial").read_text())
        return {"value": 3}

    done = runner.run("a", {}, resume)
    meta = json.loads((done.path / MARKER).read_text())
    assert meta["summary"] == {"value": 3} and seen == ["x"] and done.path == folder
