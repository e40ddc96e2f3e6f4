"""Guest instructions per inference on emulated aarch64, counted from qemu's own logs.

Why this way: Debian 12's qemu 7.2 has no TCG plugins (no `libinsn.so`), but
every qemu-user can log each translated block (`-d in_asm`: its instructions)
and each execution of one (`-d exec` with `nochain`, so chained blocks are
logged too). Summing the block lengths over the executions counts the
instructions the guest ran, exactly, without timing anything.

Two things keep it fast and clean:
- `-dfilter` restricts logging to the machine code of LiteRT (its shared
  libraries) and the C/C++ runtime it calls (libc, libm, libstdc++, libgcc):
  CPython's own work (~1.6 billion instructions to import numpy and LiteRT) is
  never logged. The address ranges come from a first, unlogged run of the same
  script (qemu-user places libraries deterministically; the second run checks
  they did not move).
- `-d strace` puts the script's marker syscalls (`stat("/kws-kd-marker-<i>")`)
  into the same log, so each invoke is counted on its own: one warm-up invoke,
  then N steady-state invokes, which come out identical when the kernels are
  data-independent.

The count is of aarch64 instructions as XNNPACK would run them on an
ARMv8.2-A core with dot-product support (the faked /proc/cpuinfo of
`kws_kd.bench.arm`). It is machine-independent, unlike emulated wall time.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from kws_kd.errors import KwsKdError

MARKER = "kws-kd-marker-"

COUNT_SCRIPT = r"""
import os, sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, invokes, maps_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
interp = Interpreter(model_path=model, num_threads=1)
interp.allocate_tensors()
with open(maps_out, "w") as f:
    f.write(open("/proc/self/maps").read())
if invokes:
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.load(inp).reshape(d["shape"]).astype(d["dtype"]))
    for i in range(invokes + 1):
        os.path.exists("/MARKER%d" % i)
        interp.invoke()
    os.path.exists("/MARKER%d" % (invokes + 1))
""".replace("MARKER", MARKER)

# Log -> instructions. An "IN:" block is one translated block: remember its
# first pc and length. A "Trace" line is one execution of the block at a pc:
# add that length. A marker line prints the running total.
COUNT_AWK = r"""
/^IN:/ { inblk = 1; n = 0; first = ""; next }
inblk && /^0x/ { if (first == "") { first = substr($1, 3, length($1) - 3); sub(/^0+/, "", first) } n++; next }
inblk { len[first] = n; inblk = 0 }
/^Trace/ { split($4, f, "/"); pc = f[2]; sub(/^0+/, "", pc); if (pc in len) total += len[pc]; else unknown++; next }
/MARKER[0-9]+/ { match($0, /MARKER[0-9]+/); m = substr($0, RSTART, RLENGTH); sub(/^MARKER/, "", m)
                 printf "MARK %s %.0f %.0f\n", m, total, unknown }  # %.0f: mawk prints big numbers as 2.1e+09
""".replace("MARKER", MARKER)

COUNTED_LIBS = re.compile(r"/(ai_edge_litert/[^/]+\.so[^/]*|lib(c|m|stdc\+\+|gcc_s)\.so[^/]*)$")


def code_ranges(maps_text: str) -> list[tuple[int, int, str]]:
    """Executable mappings of LiteRT's and the C/C++ runtime's libraries: (start, end, file name)."""
    ranges = []
    for line in maps_text.splitlines():
        parts = line.split()
        if len(parts) < 6 or "x" not in parts[1] or not COUNTED_LIBS.search(parts[5]):
            continue
        start, end = (int(v, 16) for v in parts[0].split("-"))
        ranges.append((start, end, Path(parts[5]).name))
    return ranges


def count_log(lines) -> list[tuple[int, int, int]]:
    """Run the counter on log lines (in Python, for tests and small logs): [(marker, total, unknown)]."""
    lengths, total, unknown, marks = {}, 0, 0, []
    block_pc, block_len = None, 0
    for line in lines:
        if line.startswith("IN:"):
            block_pc, block_len = "", 0
            continue
        if block_pc is not None:
            if line.startswith("0x"):
                block_pc = block_pc or line.split()[0][2:-1].lstrip("0")
                block_len += 1
                continue
            lengths[block_pc], block_pc = block_len, None
        if line.startswith("Trace"):
            pc = line.split()[3].split("/")[1].lstrip("0")
            if pc in lengths:
                total += lengths[pc]
            else:
                unknown += 1
        elif MARKER in line:
            marks.append((int(re.search(MARKER + r"(\d+)", line).group(1)), total, unknown))
    return marks


def per_invoke(marks: list[tuple[int, int, int]], invokes: int) -> dict:
    """Warm-up and steady-state instruction counts from the marker totals."""
    totals = {m: t for m, t, _ in marks}
    if sorted(totals) != list(range(invokes + 2)):
        raise KwsKdError(f"instruction count: expected markers 0..{invokes + 1} in the qemu log, got {sorted(totals)}")
    diffs = [totals[i + 1] - totals[i] for i in range(invokes + 1)]
    steady = diffs[1:]
    return {
        "instructions_per_inference": int(statistics.median(steady)),
        "instructions_first_inference": diffs[0],
        "instructions_steady_runs": steady,
        "instructions_unlogged_blocks": max(u for _, _, u in marks),
    }


def count_instructions(cache: Path, command, tflite: Path, input_npy: Path, *, invokes: int = 3,
                       timeout_s: float = 1800) -> dict:
    """Count aarch64 instructions per `invoke()` of `tflite`.

    `command(args, qemu_args)` returns the argv that runs the guest python with
    `args` (as `kws_kd.bench.arm` builds it, faked cpuinfo included).
    """
    script = cache / "count_model.py"
    script.write_text(COUNT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(cache / "site"), "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="kws-kd-arm-count-") as tmp:
        maps1, maps2 = Path(tmp) / "maps1", Path(tmp) / "maps2"
        probe = subprocess.run(command([str(script), str(tflite), str(input_npy), "0", str(maps1)], []),
                               capture_output=True, text=True, timeout=timeout_s, env=env)
        if probe.returncode != 0 or not maps1.exists():
            tail = [ln for ln in probe.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
            raise KwsKdError(f"{tflite.name}: the aarch64 probe run failed: {tail[0][:200]}")
        ranges = code_ranges(maps1.read_text())
        if not any("litert" in name.lower() for _, _, name in ranges):
            raise KwsKdError(f"{tflite.name}: no LiteRT library among the guest's mappings; cannot filter the log")
        dfilter = ",".join(f"0x{s:x}..0x{e - 1:x}" for s, e, _ in ranges)
        qemu_args = ["-d", "in_asm,exec,nochain,strace", "-dfilter", dfilter, "-D", "/dev/stdout"]
        awk_file = Path(tmp) / "count.awk"
        awk_file.write_text(COUNT_AWK)
        guest = subprocess.Popen(command([str(script), str(tflite), str(input_npy), str(invokes), str(maps2)], qemu_args),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        try:
            out = subprocess.run(["awk", "-f", str(awk_file)], stdin=guest.stdout, capture_output=True, text=True,
                                 timeout=timeout_s)
        finally:
            guest.stdout.close()
            rc = guest.wait(timeout=60)
        if rc != 0:
            raise KwsKdError(f"{tflite.name}: the logged aarch64 run exited with status {rc}")
        if code_ranges(maps2.read_text()) != ranges:
            raise KwsKdError(f"{tflite.name}: library addresses moved between the probe and the counted run")
        marks = [(int(m), int(t), int(u)) for _, m, t, u in (ln.split() for ln in out.stdout.splitlines()
                                                              if ln.startswith("MARK"))]
    result = per_invoke(marks, invokes)
    result["instructions_counted_in"] = sorted({name for _, _, name in ranges})
    result["instructions_method"] = (
        f"qemu-user -d in_asm,exec,nochain with -dfilter on LiteRT + libc/libm/libstdc++/libgcc code; "
        f"one warm-up invoke, then the median of {invokes}"
    )
    return result
