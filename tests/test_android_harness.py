"""android_harness/harness.py against a fake `adb` on PATH.

The fake records every call (so the test can check what would have happened on a
phone: install with -g, pushes, the intent extras, no wait-for-device) and plays
back logcat output the way the app writes it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "android_harness" / "harness.py"
GOLDEN = Path(__file__).resolve().parents[1] / "android_harness" / "app" / "src" / "test" / "resources" / "golden"

FAKE_ADB = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys, time
    args = sys.argv[1:]
    with open(os.environ["FAKE_ADB_LOG"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    mode = os.environ.get("FAKE_ADB_MODE", "one")
    if args and args[0] == "-s":
        args = args[2:]
    if args == ["devices"]:
        print("List of devices attached")
        if mode == "unauthorized":
            print("R58M123\\tunauthorized")
        elif mode == "two":
            print("R58M123\\tdevice\\nemulator-5554\\tdevice")
        elif mode != "none":
            print("R58M123\\tdevice")
        print()
        sys.exit(0)
    if mode == "none":
        print("error: no devices/emulators found", file=sys.stderr)
        sys.exit(1)
    if args[:1] == ["logcat"] and "-c" not in args:
        print("--------- beginning of main", flush=True)
        print("I/KwsKdLatency( 4242): ready model=m.tflite input=int8 output=int8 labels=4 delegate=xnnpack hop_ms=250 threads=1", flush=True)
        if mode == "app_error":
            print("E/KwsKdLatency( 4242): error=m.json: sidecar version 2 is not supported", flush=True)
        else:
            n = int(os.environ.get("FAKE_ADB_LINES", "5"))
            for i in range(n):
                label = "yes" if i % 2 else "_silence_"
                print(f"I/KwsKdLatency( 4242): hop={{i}} latency_us={{1000 + 100 * i}} label={{label}} confidence=0.8000 detected=true delegate=xnnpack", flush=True)
                time.sleep(0.01)
        time.sleep(60)  # logcat never ends by itself
        sys.exit(0)
    if args[:1] == ["install"] and mode == "install_fails":
        print("adb: failed to install app-debug.apk: Failure [INSTALL_FAILED_OLDER_SDK]", file=sys.stderr)
        sys.exit(1)
    if args[:3] == ["shell", "am", "start"]:
        print("Starting: Intent {{ cmp=org.kwskd.app/.MainActivity (has extras) }}")
    sys.exit(0)
    """
)


def _load_harness():
    spec = importlib.util.spec_from_file_location("kwskd_android_harness", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


harness = _load_harness()


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    adb = bindir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "adb_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.delenv("ADB", raising=False)

    def calls() -> list[list[str]]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


@pytest.fixture
def model_files(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes((GOLDEN / "tiny_int8.tflite").read_bytes())
    (tmp_path / "m.json").write_text((GOLDEN / "tiny_int8.json").read_text())
    apk = tmp_path / "app-debug.apk"
    apk.write_bytes(b"PK fake apk")
    return model, apk


def test_no_device_exits_cleanly(fake_adb, model_files, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_MODE", "none")
    model, apk = model_files
    assert harness.main(["--model", str(model), "--apk", str(apk)]) == 0
    out = capsys.readouterr().out
    assert "no Android device attached (adb devices lists none)" in out
    assert fake_adb() == [["devices"]]  # nothing else was attempted, certainly no wait-for-device


def test_full_run_installs_pushes_launches_and_collects(fake_adb, model_files, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FAKE_ADB_MODE", "one")
    monkeypatch.setenv("FAKE_ADB_LINES", "5")
    model, apk = model_files
    out_json = tmp_path / "res" / "latency.json"
    t0 = time.monotonic()
    rc = harness.main(["--model", str(model), "--apk", str(apk), "--count", "5", "--seconds", "20",
                       "--hop-ms", "100", "--out", str(out_json)])
    assert rc == 0
    assert time.monotonic() - t0 < 15  # stopped at --count, did not wait for logcat to end
    calls = fake_adb()
    flat = [" ".join(c) for c in calls]
    assert not any("wait-for-device" in c for c in flat)
    assert all(c[:2] == ["-s", "R58M123"] for c in calls[1:])  # every device call is pinned
    assert ["-s", "R58M123", "install", "-r", "-g", str(apk)] in calls
    pushes = [c for c in calls if c[2:3] == ["push"]]
    assert [p[3] for p in pushes] == [str(model), str(model.with_suffix(".json"))]
    assert [p[4] for p in pushes] == ["/data/local/tmp/kwskd/m.tflite", "/data/local/tmp/kwskd/m.json"]
    start = next(c for c in calls if c[2:5] == ["shell", "am", "start"])
    extras = dict(zip(start[start.index("--es") + 1 :: 3], start[start.index("--es") + 2 :: 3]))
    assert start[start.index("-n") + 1] == "org.kwskd.app/.MainActivity"
    assert extras["model_path"] == "m.tflite" and extras["hop_ms"] == "100" and extras["use_gpu"] == "false"
    assert any(c[2:] == ["shell", "run-as", "org.kwskd.app", "cp", "/data/local/tmp/kwskd/m.json", "files/m.json"] for c in calls)
    assert calls[-1][2:] == ["shell", "am", "force-stop", "org.kwskd.app"]

    data = json.loads(out_json.read_text())
    lat = [r["latency_us"] for r in data["inferences"]]
    assert lat == [1000, 1100, 1200, 1300, 1400]
    assert data["summary"]["latency_us_median"] == 1200
    assert data["summary"]["labels"] == {"_silence_": 3, "yes": 2}
    assert data["ready"]["input"] == "int8"
    assert "median 1.20 ms" in capsys.readouterr().out


def test_no_run_as_passes_the_staging_path(fake_adb, model_files, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_MODE", "one")
    model, apk = model_files
    assert harness.main(["--model", str(model), "--skip-install", "--no-run-as", "--gpu", "--count", "2", "--quiet"]) == 0
    calls = fake_adb()
    assert not any("run-as" in c or "install" in c for c in calls)
    start = next(c for c in calls if c[2:5] == ["shell", "am", "start"])
    assert start[start.index("model_path") + 1] == "/data/local/tmp/kwskd/m.tflite"
    assert start[start.index("use_gpu") + 1] == "true"


def test_collection_stops_at_timeout_with_partial_results(fake_adb, model_files, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_MODE", "one")
    monkeypatch.setenv("FAKE_ADB_LINES", "3")
    model, apk = model_files
    t0 = time.monotonic()
    records, error, ready = harness.collect(harness.Adb("adb", "R58M123"), seconds=1.5, count=100, echo=False)
    elapsed = time.monotonic() - t0
    assert 1.4 <= elapsed < 10
    assert error is None and ready is not None
    assert [r["hop"] for r in records] == ["0", "1", "2"]


def test_app_error_is_reported(fake_adb, model_files, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_ADB_MODE", "app_error")
    model, apk = model_files
    assert harness.main(["--model", str(model), "--apk", str(apk), "--seconds", "10"]) == 1
    assert "sidecar version 2 is not supported" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mode,extra,message",
    [
        ("unauthorized", [], "unauthorized"),
        ("two", [], "--serial"),
        ("one", ["--serial", "nope"], "device nope is not attached"),
        ("install_fails", [], "INSTALL_FAILED_OLDER_SDK"),
    ],
)
def test_device_problems_are_one_line_errors(fake_adb, model_files, monkeypatch, capsys, mode, extra, message):
    monkeypatch.setenv("FAKE_ADB_MODE", mode)
    model, apk = model_files
    assert harness.main(["--model", str(model), "--apk", str(apk), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_sidecar_and_apk(fake_adb, model_files, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FAKE_ADB_MODE", "one")
    model, apk = model_files
    assert harness.main(["--model", str(model), "--apk", str(tmp_path / "none.apk")]) == 2
    assert "APK not found" in capsys.readouterr().err
    model.with_suffix(".json").unlink()
    assert harness.main(["--model", str(model), "--apk", str(apk)]) == 2
    assert "sidecar missing" in capsys.readouterr().err
    assert not any(c[2:3] == ["install"] for c in fake_adb())  # nothing installed when inputs are bad


def test_adb_missing(monkeypatch, model_files, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    model, apk = model_files
    assert harness.main(["--model", str(model), "--apk", str(apk)]) == 2
    assert "adb not found" in capsys.readouterr().err


def test_parse_line_formats():
    brief = "I/KwsKdLatency( 1234): hop=3 latency_us=1834 label=yes confidence=0.9123 detected=true delegate=xnnpack"
    assert harness.parse_line(brief)["latency_us"] == 1834
    threadtime = "11-25 16:40:00.123  1234  1250 I KwsKdLatency: hop=1 latency_us=99 label=no"
    assert harness.parse_line(threadtime)["label"] == "no"
    assert harness.parse_line("hop=1 latency_us=7 label=a")["latency_us"] == 7  # -v raw
    assert harness.parse_line("--------- beginning of main") is None
    assert harness.parse_line("E/KwsKdLatency( 1): error=boom here") == {"error": "boom here"}
