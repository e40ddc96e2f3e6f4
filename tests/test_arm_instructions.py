"""Instruction counting from qemu block logs: the awk counter against a Python one, and a real run."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kws_kd.bench.arm_instructions import COUNT_AWK, MARKER, code_ranges, count_log, per_invoke
from kws_kd.errors import KwsKdError

# A made-up log in qemu 7.2's format: two blocks (3 and 2 instructions), executed
# in a pattern whose totals are known by hand, with marker syscalls between.
LOG = f"""----------------
IN:
0x0000005500001000:  d503201f  nop
0x0000005500001004:  d280001d  movz     x29, #0
0x0000005500001008:  97ffee80  bl       #0x5500002000

Trace 0: 0x7f00 [0000000001009331/0000005500001000/00000001/00000200]
12 newfstatat(AT_FDCWD,"/{MARKER}0",0x5500f000,0) = -1 errno=2 (No such file or directory)
----------------
IN:
0x0000005500002000:  a9b27bfd  stp      x29, x30, [sp, #-0xe0]!
0x0000005500002004:  d65f03c0  ret

Trace 0: 0x7f40 [0000000001009331/0000005500002000/00000001/00000200]
Trace 0: 0x7f00 [0000000001009331/0000005500001000/00000001/00000200]
12 newfstatat(AT_FDCWD,"/{MARKER}1",0x5500f000,0) = -1 errno=2 (No such file or directory)
Trace 0: 0x7f40 [0000000001009331/0000005500002000/00000001/00000200]
Trace 0: 0x7f80 [0000000001009331/0000005500003000/00000001/00000200]
12 newfstatat(AT_FDCWD,"/{MARKER}2",0x5500f000,0) = -1 errno=2 (No such file or directory)
"""
WANT = [(0, 3, 0), (1, 3 + 2 + 3, 0), (2, 8 + 2, 1)]  # the last block was never translated in the log


def test_python_counter_on_a_known_log():
    assert count_log(LOG.splitlines()) == WANT


@pytest.mark.skipif(shutil.which("awk") is None, reason="no awk")
def test_awk_counter_agrees_with_the_python_one(tmp_path):
    prog = tmp_path / "count.awk"
    prog.write_text(COUNT_AWK)
    out = subprocess.run(["awk", "-f", str(prog)], input=LOG, capture_output=True, text=True, check=True).stdout
    got = [tuple(int(v) for v in line.split()[1:]) for line in out.splitlines() if line.startswith("MARK")]
    assert got == WANT


@pytest.mark.skipif(shutil.which("awk") is None, reason="no awk")
def test_awk_counter_prints_totals_past_two_to_the_31(tmp_path):
    """mawk prints numbers beyond 2**31 as 2.14748e+09 unless told otherwise; totals get that big."""
    block = "IN:\n" + "".join(f"0x{0x5500001000 + 4 * i:016x}:  d503201f  nop\n" for i in range(10_000)) + "\n"
    trace = "Trace 0: 0x7f00 [0000000001009331/0000005500001000/00000001/00000200]\n"
    prog = tmp_path / "count.awk"
    prog.write_text(COUNT_AWK)
    log = tmp_path / "log"
    with open(log, "w") as f:
        f.write(block)
        f.write(trace * 220_000)  # 2.2 billion instructions
        f.write(f'1 newfstatat(AT_FDCWD,"/{MARKER}0",0x0,0) = -1\n')
    out = subprocess.run(["awk", "-f", str(prog), str(log)], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["MARK", "0", "2200000000", "0"]


def test_per_invoke_takes_differences_and_checks_markers():
    marks = [(0, 100, 0), (1, 160, 0), (2, 210, 0), (3, 260, 0), (4, 311, 0)]
    r = per_invoke(marks, 3)
    assert r["instructions_first_inference"] == 60
    assert r["instructions_steady_runs"] == [50, 50, 51] and r["instructions_per_inference"] == 50
    with pytest.raises(KwsKdError, match="expected markers 0..4"):
        per_invoke(marks[:-1], 3)


def test_code_ranges_keep_litert_and_runtime_libraries_only():
    maps = "\n".join([
        "5500000000-5500300000 r-xp 00000000 fe:00 1 /sysroot/usr/bin/python3.11",
        "5508359000-5508807000 r-xp 000f9000 fe:00 2 /cache/site/ai_edge_litert/libLiteRt.so",
        "5508807000-5508900000 rw-p 00000000 fe:00 2 /cache/site/ai_edge_litert/libLiteRt.so",
        "5509000000-5509100000 r-xp 00000000 fe:00 3 /sysroot/lib/aarch64-linux-gnu/libc.so.6",
        "5509200000-5509300000 r-xp 00000000 fe:00 4 /cache/site/numpy/core/_multiarray_umath.cpython-311.so",
        "5509400000-5509500000 r-xp 00000000 fe:00 5 /sysroot/usr/lib/aarch64-linux-gnu/libstdc++.so.6.0.30",
    ])
    assert code_ranges(maps) == [
        (0x5508359000, 0x5508807000, "libLiteRt.so"),
        (0x5509000000, 0x5509100000, "libc.so.6"),
        (0x5509400000, 0x5509500000, "libstdc++.so.6.0.30"),
    ]


@pytest.mark.slow
def test_counted_instructions_are_steady_and_above_the_mac_bound(tmp_path):
    """A real count under qemu: every steady-state invoke runs the same instructions, and at
    least MACs / 4 of them (a 128-bit float32 FMLA does 4 multiply-accumulates)."""
    keras = pytest.importorskip("keras")
    from kws_kd.bench import arm
    from kws_kd.tflite.convert import convert_model

    cache = arm.cache_dir()
    if shutil.which(arm.QEMU) is None or not (cache / "sysroot/usr/bin/python3.11").exists():
        pytest.skip(f"no qemu-aarch64-static or no prepared ARM cache at {cache} (run `kws-kd bench arm` once)")
    inp = keras.Input((1600,), batch_size=1)
    x = keras.layers.Reshape((10, 160))(inp)
    x = keras.layers.Conv1D(32, 3)(x)
    model = keras.Model(inp, keras.layers.Dense(5)(keras.layers.Flatten()(x)))
    path = tmp_path / "m.tflite"
    convert_model(model, {"float32": path}, label="m")
    macs = 8 * 3 * 160 * 32 + 8 * 32 * 5
    r = arm.run_arm(path, instructions=True, invokes=2)
    assert len(set(r["instructions_steady_runs"])) == 1
    assert r["instructions_per_inference"] >= macs / 4
    assert r["instructions_unlogged_blocks"] == 0
    assert any("LiteRt" in name for name in r["instructions_counted_in"])
