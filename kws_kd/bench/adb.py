"""Phone benchmark over adb with LiteRT's `benchmark_model` binary (supplied by the user).

We push the binary and the model to /data/local/tmp, run it with the user's
flags (threads, XNNPACK or GPU delegate, optional `taskset` mask) and parse its
summary. Never hangs: no `adb wait-for-device`, and every adb call has a
timeout. With no phone attached we fail fast with a clear message.

Output formats handled (FACTS §5): lines may carry an `INFO: ` prefix; numbers
may be in scientific notation (2.95034e+06); memory is reported either as
`Memory footprint delta from the start of the tool (MB): init=.. overall=..`
(newer) or `Peak memory footprint (MB): init=.. overall=..` (older).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from kws_kd.errors import KwsKdError

REMOTE_DIR = "/data/local/tmp"
NO_DEVICE = "no Android device attached (adb devices lists none)"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_benchmark_output(text: str) -> dict:
    """Parse `benchmark_model` stdout into numbers (microseconds, MB).

    Returns keys init_us, first_us, warmup_avg_us, avg_us (from the
    "Inference timings in us" line), and when present count/first/min/max/avg/std
    of the last `count=` statistics line, memory_init_mb/memory_overall_mb and
    memory_kind ("delta" or "peak"). Raises KwsKdError when no timing line exists.
    """
    result: dict = {}
    stats_lines = []
    for raw in text.splitlines():
        line = re.sub(r"^\s*(?:INFO|I|WARNING|W)\s*:\s*", "", raw.strip())
        if line.startswith("Inference timings in us"):
            body = line.split(":", 1)[1]
            parts = {k.strip().lower(): float(v) for k, v in re.findall(rf"([A-Za-z ()]+):\s*({_NUM})", body)}
            result["init_us"] = parts.get("init")
            result["first_us"] = parts.get("first inference")
            result["warmup_avg_us"] = parts.get("warmup (avg)")
            result["avg_us"] = parts.get("inference (avg)")
        elif line.startswith("count="):
            stats_lines.append(line)
        elif "memory footprint" in line.lower() and "init=" in line:
            kind = "peak" if line.lower().startswith("peak") else "delta"
            vals = dict(re.findall(rf"(init|overall)=({_NUM})", line))
            result["memory_kind"] = kind
            result["memory_init_mb"] = float(vals["init"]) if "init" in vals else None
            result["memory_overall_mb"] = float(vals["overall"]) if "overall" in vals else None
    if result.get("avg_us") is None:
        raise KwsKdError("benchmark_model output has no 'Inference timings in us' line (did it fail? see its output)")
    if stats_lines:
        stats = dict(re.findall(rf"(count|first|curr|min|max|avg|std)=({_NUM})", stats_lines[-1]))
        result.update({f"runs_{k}": float(v) for k, v in stats.items()})
    return result


class Adb:
    """Thin adb wrapper: every call has a timeout, and no call waits for a device."""

    def __init__(self, adb: str = "adb", serial: str | None = None, timeout_s: float = 30.0):
        path = shutil.which(adb)
        if path is None:
            raise KwsKdError(f"{adb}: adb not found on PATH (Debian package: adb)")
        self.adb = path
        self.serial = serial
        self.timeout_s = timeout_s

    def _run(self, args: list[str], timeout_s: float | None = None, device: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.adb] + (["-s", self.serial] if device and self.serial else []) + args
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s or self.timeout_s)
        except subprocess.TimeoutExpired:
            raise KwsKdError(f"adb {' '.join(args[:2])}: no answer within {timeout_s or self.timeout_s:.0f} s") from None

    def devices(self) -> list[str]:
        """Serials of attached devices in the `device` state (not offline/unauthorized)."""
        proc = self._run(["devices"], device=False)
        if proc.returncode != 0:
            raise KwsKdError(f"adb devices failed: {(proc.stderr or proc.stdout).strip()[:200]}")
        serials = []
        for line in proc.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "device":
                serials.append(parts[0])
        return serials

    def choose_device(self) -> str:
        serials = self.devices()
        if not serials:
            raise KwsKdError(NO_DEVICE)
        if self.serial is None:
            if len(serials) > 1:
                raise KwsKdError(f"{len(serials)} Android devices attached ({', '.join(serials)}); pick one with --serial")
            self.serial = serials[0]
        elif self.serial not in serials:
            raise KwsKdError(f"device {self.serial} is not attached (adb devices lists {', '.join(serials)})")
        return self.serial

    def push(self, local: str | os.PathLike, remote: str, timeout_s: float = 120.0) -> None:
        proc = self._run(["push", str(local), remote], timeout_s)
        if proc.returncode != 0:
            raise KwsKdError(f"{local}: adb push failed: {(proc.stderr or proc.stdout).strip()[:200]}")

    def shell(self, command: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
        return self._run(["shell", command], timeout_s)


def benchmark_flags(
    remote_model: str,
    *,
    threads: int = 1,
    xnnpack: bool = True,
    gpu: bool = False,
    num_runs: int = 50,
    warmup_runs: int = 10,
    extra: list[str] | None = None,
) -> list[str]:
    flags = [
        f"--graph={remote_model}",
        f"--num_threads={threads}",
        f"--num_runs={num_runs}",
        f"--warmup_runs={warmup_runs}",
        f"--use_xnnpack={'true' if xnnpack else 'false'}",
    ]
    if gpu:
        flags.append("--use_gpu=true")
    return flags + list(extra or [])


def run_adb_benchmark(
    benchmark_binary: str | os.PathLike,
    model: str | os.PathLike,
    *,
    serial: str | None = None,
    threads: int = 1,
    xnnpack: bool = True,
    gpu: bool = False,
    taskset: str | None = None,
    num_runs: int = 50,
    warmup_runs: int = 10,
    extra_flags: list[str] | None = None,
    adb: str = "adb",
    timeout_s: float = 600.0,
) -> dict:
    """Push and run `benchmark_model` on the phone; return the parsed figures plus the settings."""
    binary, model = Path(benchmark_binary), Path(model)
    for path, what in ((binary, "benchmark_model binary"), (model, ".tflite model")):
        if not path.is_file():
            raise KwsKdError(f"{path}: no such {what}")
    if taskset is not None and not re.fullmatch(r"[0-9a-fA-F]+", taskset):
        raise KwsKdError(f"--taskset {taskset!r}: expected a hexadecimal CPU mask such as f0")
    dev = Adb(adb, serial)
    device = dev.choose_device()
    remote_bin = f"{REMOTE_DIR}/benchmark_model"
    remote_model = f"{REMOTE_DIR}/{model.name}"
    dev.push(binary, remote_bin)
    chmod = dev.shell(f"chmod 755 {remote_bin}")
    if chmod.returncode != 0:
        raise KwsKdError(f"adb shell chmod failed: {(chmod.stderr or chmod.stdout).strip()[:200]}")
    dev.push(model, remote_model)
    flags = benchmark_flags(
        remote_model, threads=threads, xnnpack=xnnpack, gpu=gpu, num_runs=num_runs, warmup_runs=warmup_runs,
        extra=extra_flags,
    )
    command = " ".join(([f"taskset {taskset}"] if taskset else []) + [remote_bin] + [shlex.quote(f) for f in flags])
    proc = dev.shell(command, timeout_s)
    text = proc.stdout + "\n" + proc.stderr
    if proc.returncode != 0 and "Inference timings" not in text:
        tail = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["no output"]
        raise KwsKdError(f"{model.name}: benchmark_model failed on {device}: {tail[0][:200]}")
    result = parse_benchmark_output(text)
    result.update(
        {
            "device": device,
            "model": model.name,
            "threads": threads,
            "xnnpack": xnnpack,
            "gpu": gpu,
            "taskset": taskset,
            "num_runs": num_runs,
            "warmup_runs": warmup_runs,
            "command": command,
        }
    )
    return result
