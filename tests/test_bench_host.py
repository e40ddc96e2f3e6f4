"""Host and ARM benchmark plumbing on a tiny model (no timing assertions)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    from kws_kd.tflite.convert import convert_model

    inp = keras.Input((1600,), batch_size=1)
    x = keras.layers.Reshape((10, 160))(inp)
    x = keras.layers.Conv1D(8, 3, activation="relu")(x)
    out = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling1D()(x))
    model = keras.Model(inp, out)
    path = tmp_path_factory.mktemp("bench") / "tiny.tflite"
    convert_model(model, {"float32": path}, label="tiny")
    return path, model


def test_host_latency_reports_runs_and_size(tiny_tflite):
    from kws_kd.bench.host import host_latency

    path, _ = tiny_tflite
    for threads in (1, 2):
        r = host_latency(path, threads=threads, runs=50, warmup=5)
        assert r["runs"] == 50 and r["threads"] == threads and r["xnnpack"] is True
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["size_bytes"] == path.stat().st_size and r["input_samples"] == 1600


def test_time_invoke_counts_calls():
    from kws_kd.bench.host import summarize_ms, time_invoke

    calls = []
    times = time_invoke(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and times.shape == (7,)
    s = summarize_ms(np.array([1.0, 2.0, 3.0, 4.0, 10.0]))
    assert s["median_ms"] == 3.0 and s["p90_ms"] == pytest.approx(7.6) and s["min_ms"] == 1.0


def test_bench_host_cli_writes_json(tiny_tflite, tmp_path, capsys):
    import json

    from kws_kd.cli.main import main

    path, _ = tiny_tflite
    out = tmp_path / "host.json"
    assert main(["bench", "host", str(path), "--threads", "1", "--runs", "50", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["model"] == "tiny.tflite"
    assert "tiny.tflite" in capsys.readouterr().out


def test_arm_skips_cleanly_without_qemu(tiny_tflite, monkeypatch, capsys):
    from kws_kd.bench import arm
    from kws_kd.cli.main import main

    monkeypatch.setattr(arm, "QEMU", "qemu-aarch64-static-not-installed")
    with pytest.raises(arm.ArmUnavailable, match="not found"):
        arm.prepare()
    assert main(["bench", "arm", str(tiny_tflite[0])]) == 0
    assert "skipped:" in capsys.readouterr().out


@pytest.mark.slow
def test_arm_run_matches_host(tiny_tflite):
    """Under qemu-user the aarch64 LiteRT wheel gives the host's logits, with XNNPACK on."""
    from kws_kd.bench import arm

    cache = arm.cache_dir()
    if shutil.which(arm.QEMU) is None or not (cache / "sysroot/usr/bin/python3.11").exists():
        pytest.skip(f"no qemu-aarch64-static or no prepared ARM cache at {cache} (run `kws-kd bench arm` once)")
    r = arm.run_arm(tiny_tflite[0])
    assert r["xnnpack"] is True and r["fake_cpuinfo"] is True
    assert r["max_abs_diff_vs_host"] < 1e-5
    assert r["instructions_per_inference"] is None and "not measured" in r["instructions_note"]
