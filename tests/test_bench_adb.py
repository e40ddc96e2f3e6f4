"""adb benchmark: the benchmark_model parser on recorded outputs, and device handling on a fake `adb`.

The fake `adb` is a small Python script put first on PATH: it answers
`devices` from a file, records every call, returns a recorded benchmark output
for `shell .../benchmark_model`, and can be told to hang.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from kws_kd.bench.adb import NO_DEVICE, Adb, parse_benchmark_output, run_adb_benchmark
from kws_kd.cli.main import main
from kws_kd.errors import KwsKdError

RECORDED = Path(__file__).parent / "data" / "adb_outputs"

FAKE_ADB = r'''#!PYTHON
import os, sys, time
state = os.environ["FAKE_ADB_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "calls.log"), "a") as fh:
    fh.write(" ".join(args) + "\n")
if os.path.exists(os.path.join(state, "hang")):
    time.sleep(60)
if args[:1] == ["-s"]:
    args = args[2:]
if args == ["devices"]:
    print("List of devices attached")
    devs = os.path.join(state, "devices")
    if os.path.exists(devs):
        sys.stdout.write(open(devs).read())
    print()
    sys.exit(0)
if not os.path.exists(os.path.join(state, "devices")):
    print("error: no devices/emulators found", file=sys.stderr)
    sys.exit(1)
if args[0] == "wait-for-device":
    sys.exit(99)
if args[0] == "push":
    print(f"{args[1]}: 1 file pushed.")
    sys.exit(0)
if args[0] == "shell":
    if "benchmark_model" in args[1] and "--graph" in args[1]:
        sys.stdout.write(open(os.environ["FAKE_ADB_OUTPUT"]).read())
    sys.exit(0)
sys.exit(1)
'''


@pytest.fixture()
def fake_adb(tmp_path, monkeypatch):
    bindir, state = tmp_path / "bin", tmp_path / "state"
    bindir.mkdir()
    state.mkdir()
    exe = bindir / "adb"
    exe.write_text(FAKE_ADB.replace("PYTHON", sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_STATE", str(state))
    monkeypatch.setenv("FAKE_ADB_OUTPUT", str(RECORDED / "new_info_prefix.txt"))
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" + bytes(60))
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    return {"state": state, "model": model, "binary": binary}


def _calls(state: Path) -> list[str]:
    log = state / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("name", sorted(json.loads((RECORDED / "expected.json").read_text())))
def test_parser_on_recorded_outputs(name):
    expected = json.loads((RECORDED / "expected.json").read_text())[name]
    got = parse_benchmark_output((RECORDED / name).read_text())
    for key, value in expected.items():
        if isinstance(value, str):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9), key


def test_parser_refuses_output_without_timings():
    with pytest.raises(KwsKdError, match="Inference timings"):
        parse_benchmark_output("INFO: STARTING!\nERROR: Could not open '/data/local/tmp/x.tflite'.\n")


def test_no_device_exits_nonzero_with_message(fake_adb, capsys):
    rc = main(["bench", "adb", str(fake_adb["model"]), "--benchmark-binary", str(fake_adb["binary"])])
    assert rc != 0
    assert NO_DEVICE in capsys.readouterr().err
    calls = _calls(fake_adb["state"])
    assert calls == ["devices"]  # nothing pushed, and never wait-for-device


def test_offline_device_does_not_count(fake_adb):
    (fake_adb["state"] / "devices").write_text("emulator-5554\toffline\nR58M\tunauthorized\n")
    with pytest.raises(KwsKdError, match=r"no Android device attached \(adb devices lists none\)"):
        Adb().choose_device()


def test_full_run_pushes_runs_and_parses(fake_adb, tmp_path, capsys):
    (fake_adb["state"] / "devices").write_text("R58M123\tdevice\n")
    out = tmp_path / "adb.json"
    rc = main(["bench", "adb", str(fake_adb["model"]), "--benchmark-binary", str(fake_adb["binary"]),
               "--threads", "4", "--taskset", "f0", "--runs", "60", "--json", str(out)])  # fmt: skip
    assert rc == 0
    assert "3.866 ms" in capsys.readouterr().out
    calls = _calls(fake_adb["state"])
    assert not any("wait-for-device" in c for c in calls)
    assert f"-s R58M123 push {fake_adb['binary']} /data/local/tmp/benchmark_model" in calls
    assert f"-s R58M123 push {fake_adb['model']} /data/local/tmp/m.tflite" in calls
    run = [c for c in calls if "--graph" in c]
    assert len(run) == 1
    assert run[0].startswith("-s R58M123 shell taskset f0 /data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite")
    for flag in ("--num_threads=4", "--num_runs=60", "--use_xnnpack=true"):
        assert flag in run[0]
    result = json.loads(out.read_text())
    assert result["avg_us"] == pytest.approx(3866.42) and result["device"] == "R58M123"


def test_gpu_and_no_xnnpack_flags(fake_adb):
    (fake_adb["state"] / "devices").write_text("A\tdevice\n")
    run_adb_benchmark(fake_adb["binary"], fake_adb["model"], xnnpack=False, gpu=True, extra_flags=["--enable_op_profiling=true"])
    cmd = [c for c in _calls(fake_adb["state"]) if "--graph" in c][0]
    assert "--use_xnnpack=false" in cmd and "--use_gpu=true" in cmd and "--enable_op_profiling=true" in cmd
    assert "taskset" not in cmd


def test_two_devices_need_a_serial(fake_adb):
    (fake_adb["state"] / "devices").write_text("A\tdevice\nB\tdevice\n")
    with pytest.raises(KwsKdError, match="pick one with --serial"):
        run_adb_benchmark(fake_adb["binary"], fake_adb["model"])
    result = run_adb_benchmark(fake_adb["binary"], fake_adb["model"], serial="B")
    assert result["device"] == "B"


def test_hanging_adb_times_out(fake_adb):
    (fake_adb["state"] / "hang").write_text("")
    with pytest.raises(KwsKdError, match="no answer within 1 s"):
        Adb(timeout_s=1).devices()


def test_bad_taskset_mask_is_refused(fake_adb):
    with pytest.raises(KwsKdError, match="hexadecimal"):
        run_adb_benchmark(fake_adb["binary"], fake_adb["model"], taskset="0-3")
