"""Run a .tflite file on emulated ARM (aarch64) with qemu-user, no phone needed.

What it gives: proof that the file loads and runs in the aarch64 build of
LiteRT (the `ai-edge-litert` manylinux aarch64 wheel) with XNNPACK on, and that
its logits match the x86 host run. Emulated wall time is NOT a latency, so it is
not reported.

Instructions per inference (`instructions=True`, `--instructions`) are
counted from qemu's own block logs (`kws_kd.bench.arm_instructions`): Debian
12's qemu 7.2 has no TCG plugins, so that is the machine-independent cost
figure available here. Without the flag the field is None with the reason.

The aarch64 environment lives in a cache folder (default
~/.cache/kws-kd/arm, or $KWS_KD_ARM_CACHE): Debian's arm64 CPython 3.11 and
its libraries, downloaded with apt-get into a private apt state (the system's
package state is untouched) and unpacked with `dpkg -x`, plus the aarch64
wheels of ai-edge-litert and its dependencies from PyPI. LiteRT reads
/proc/cpuinfo to pick kernels; under emulation that file describes the x86
host, so the run happens in a private mount namespace (`unshare -m`) with an
ARM-looking cpuinfo bind-mounted over it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from kws_kd.errors import KwsKdError

QEMU = "qemu-aarch64-static"
# A phone-class core: ARMv8.2-A with fp16 and dot product, 128-bit NEON, no SVE
# (qemu's default "max" CPU has SVE and i8mm, which XNNPACK would use).
QEMU_CPU = "cortex-a76"
NO_INSTRUCTIONS = "not measured: pass instructions=True (CLI: --instructions) to count them from qemu's block logs"
DEBS = (
    "python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libffi8 libssl3 "
    "libstdc++6 libgcc-s1 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 "
    "libcrypt1 libnsl2 libtirpc3 libdb5.3 libgdbm6"
).split()
FAKE_CPUINFO = (
    "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
    "asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
    "CPU variant\t: 0x3\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n"
)

_SCRIPT = r"""
import sys, json, numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out = sys.argv[1:4]
interp = Interpreter(model_path=model, num_threads=1)
interp.allocate_tensors()
d = interp.get_input_details()[0]
x = np.load(inp).reshape(d["shape"]).astype(d["dtype"])
interp.set_tensor(d["index"], x)
interp.invoke()
o = interp.get_output_details()[0]
np.save(out, interp.get_tensor(o["index"]))
"""


class ArmUnavailable(KwsKdError):
    """The ARM benchmark cannot run on this machine (reason in the message); callers skip."""


def cache_dir() -> Path:
    return Path(os.environ.get("KWS_KD_ARM_CACHE", Path.home() / ".cache" / "kws-kd" / "arm"))


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        raise ArmUnavailable(f"ARM environment: {what} failed: {tail[0][:200]}")


def prepare(cache: Path | None = None, timeout_s: float = 900) -> Path:
    """Build (once) the aarch64 sysroot + site-packages in `cache`; return the cache folder."""
    if shutil.which(QEMU) is None:
        raise ArmUnavailable(f"{QEMU} not found (Debian package qemu-user-static); ARM benchmark skipped")
    cache = cache or cache_dir()
    sysroot, site = cache / "sysroot", cache / "site"
    if (sysroot / "usr/bin/python3.11").exists() and (site / "ai_edge_litert").is_dir():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    state, apt_cache, debs = cache / "apt-state", cache / "apt-cache", cache / "debs"
    for d in (state / "lists/partial", apt_cache / "archives/partial", debs):
        d.mkdir(parents=True, exist_ok=True)
    apt = [
        "apt-get", "-q", "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
        "-o", f"Dir::State={state}", "-o", "Dir::State::status=/var/lib/dpkg/status",
        "-o", f"Dir::Cache={apt_cache}", "-o", "Debug::NoLocking=1",
    ]  # fmt: skip
    _check(subprocess.run(apt + ["update"], capture_output=True, text=True, timeout=timeout_s), "apt-get update (arm64)")
    _check(
        subprocess.run(apt + ["download"] + [f"{p}:arm64" for p in DEBS], cwd=debs, capture_output=True, text=True,
                       timeout=timeout_s),
        "apt-get download (arm64 CPython)",
    )  # fmt: skip
    for deb in sorted(debs.glob("*.deb")):
        _check(subprocess.run(["dpkg", "-x", str(deb), str(sysroot)], capture_output=True, text=True), f"dpkg -x {deb.name}")
    wheels = cache / "wheels"
    import importlib.metadata as md

    pins = [f"ai-edge-litert=={md.version('ai-edge-litert')}", f"numpy=={np.__version__}"]
    _check(
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
             "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux_2_17_aarch64",
             "--platform", "manylinux2014_aarch64", "-d", str(wheels)] + pins,
            capture_output=True, text=True, timeout=timeout_s,
        ),
        "pip download (aarch64 wheels)",
    )  # fmt: skip
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(site)
    return cache  # run_arm writes the current cpuinfo and guest script itself


def _command(cache: Path, args: list[str], fake_cpuinfo: bool, qemu_args: list[str] | None = None) -> list[str]:
    sysroot = cache / "sysroot"
    base = [QEMU, "-cpu", QEMU_CPU, *(qemu_args or []), "-L", str(sysroot), str(sysroot / "usr/bin/python3.11")]
    base += args
    if not fake_cpuinfo:
        return base
    inner = f"mount --bind {shlex.quote(str(cache / 'cpuinfo'))} /proc/cpuinfo && exec " + shlex.join(base)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]


def run_arm(path: str | os.PathLike, *, timeout_s: float = 600, seed: int = 0, instructions: bool = False,
            invokes: int = 3) -> dict:
    """Run one inference of `path` under aarch64 emulation and compare it with the host.

    With `instructions`, also count aarch64 instructions per inference (one
    warm-up, then the median of `invokes`; seconds to minutes per file).
    """
    from kws_kd.tflite.runner import TFLiteClassifier

    cache = prepare()
    for name, text in (("run_model.py", _SCRIPT), ("cpuinfo", FAKE_CPUINFO)):  # current versions, always
        if not (cache / name).exists() or (cache / name).read_text() != text:
            (cache / name).write_text(text)
    path = Path(path).resolve()
    from kws_kd.int8 import quantize

    host = TFLiteClassifier(path, num_threads=1)
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, host.input_samples).astype(np.float32)
    host.set_audio(audio)
    host.interpreter.invoke()
    host_raw = host.interpreter.get_tensor(host.output["index"])
    with tempfile.TemporaryDirectory(prefix="kws-kd-arm-") as tmp:
        inp, out = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        x = audio.reshape(host.input["shape"])
        if host.input_quant is not None:  # same quantized input on both sides
            x = quantize(x, host.input_quant["scale"], host.input_quant["zero_point"], host.input["dtype"])
        np.save(inp, x.astype(host.input["dtype"]))
        env = {**os.environ, "PYTHONPATH": str(cache / "site"), "PYTHONNOUSERSITE": "1"}
        results = None
        for fake in (True, False):
            proc = subprocess.run(
                _command(cache, [str(cache / "run_model.py"), str(path), str(inp), str(out)], fake),
                capture_output=True, text=True, timeout=timeout_s, env=env,
            )  # fmt: skip
            if proc.returncode == 0 and out.exists():
                results = (proc, fake)
                break
        if results is None:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
            raise KwsKdError(f"{path.name}: the aarch64 run failed under {QEMU}: {tail[0][:200]}")
        proc, fake = results
        arm_raw = np.load(out)
        counted = {"instructions_per_inference": None, "instructions_note": NO_INSTRUCTIONS}
        if instructions:
            from kws_kd.bench.arm_instructions import count_instructions

            counted = count_instructions(cache, lambda a, q: _command(cache, a, fake, q), path, inp,
                                         invokes=invokes, timeout_s=max(timeout_s, 1800))
    return {
        "model": path.name,
        "arch": "aarch64 (qemu-user)",
        "xnnpack": "XNNPACK delegate" in proc.stderr,
        "fake_cpuinfo": fake,
        "max_abs_diff_vs_host": float(np.max(np.abs(arm_raw.astype(np.float64) - host_raw.astype(np.float64)))),
        "identical_to_host": bool(np.array_equal(arm_raw, host_raw)),
        **counted,
    }


def dumps(result: dict) -> str:
    return json.dumps(result, indent=2)
