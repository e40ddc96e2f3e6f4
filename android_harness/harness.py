#!/usr/bin/env python3
"""Install the kws-kd sample app on a phone, run a model in it, collect its latencies.

    python android_harness/harness.py --model FILE.tflite [--apk APK] [--seconds 20]

In one step, over adb: install the APK (runtime permissions granted with -g),
push FILE.tflite and its sidecar FILE.json, copy them into the app's private
files (run-as; the debug APK is debuggable), launch MainActivity with the model
named in an intent extra, then read the app's `KwsKdLatency` log lines with
`adb logcat` until --count lines arrived or --seconds passed. Prints a summary
(median / mean / p90 latency, labels seen) and optionally writes it as JSON.

With no phone attached it says so and exits 0 without touching anything: it
never runs `adb wait-for-device`, and every adb call has a timeout.
Standard library only, so it runs without installing kws-kd.
Exit codes: 0 done (or no device), 1 the app reported an error or logged
nothing in time, 2 bad arguments / adb problem.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "org.kwskd.app"
ACTIVITY = f"{PACKAGE}/.MainActivity"
TAG = "KwsKdLatency"
REMOTE_STAGING = "/data/local/tmp/kwskd"
DEFAULT_APK = Path(__file__).resolve().parent / "app" / "build" / "outputs" / "apk" / "debug" / "app-debug.apk"
NO_DEVICE = "no Android device attached (adb devices lists none)"

PAIR_RE = re.compile(r"(\w+)=(\S+)")


class HarnessError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class Adb:
    """adb with a timeout on every call; `serial` pins one device."""

    def __init__(self, adb: str, serial: str | None = None, verbose: bool = False):
        self.adb = adb
        self.serial = serial
        self.verbose = verbose

    def argv(self, *args: str) -> list[str]:
        base = [self.adb] + (["-s", self.serial] if self.serial else [])
        return base + list(args)

    def run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        argv = self.argv(*args)
        if self.verbose:
            print("+ " + " ".join(argv), file=sys.stderr)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"'adb {' '.join(args)}' did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise HarnessError(f"cannot run {self.adb}: {exc.strerror or exc}") from None
        if check and proc.returncode != 0:
            msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise HarnessError(f"'adb {' '.join(args)}' failed: {msg[-1] if msg else f'exit {proc.returncode}'}")
        return proc


def list_devices(adb: Adb) -> list[tuple[str, str]]:
    """(serial, state) pairs from `adb devices`; state is 'device', 'unauthorized', 'offline', ..."""
    out = Adb(adb.adb, None, adb.verbose).run("devices", timeout=15).stdout
    devices = []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("List of devices") or line.startswith("*"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            devices.append((parts[0], parts[1]))
    return devices


def pick_device(devices: list[tuple[str, str]], serial: str | None) -> str | None:
    """The serial to use, None when nothing is attached; raises on ambiguity or a bad state."""
    if serial:
        states = dict(devices)
        if serial not in states:
            raise HarnessError(f"device {serial} is not attached (adb devices lists: {', '.join(states) or 'none'})")
        if states[serial] != "device":
            raise HarnessError(f"device {serial} is {states[serial]} (unlock it and accept the USB debugging prompt)")
        return serial
    if not devices:
        return None
    ready = [s for s, state in devices if state == "device"]
    if not ready:
        s, state = devices[0]
        raise HarnessError(f"device {s} is {state} (unlock it and accept the USB debugging prompt)")
    if len(ready) > 1:
        raise HarnessError(f"several devices attached ({', '.join(ready)}): choose one with --serial")
    return ready[0]


def parse_line(line: str) -> dict | None:
    """The key=value pairs of one KwsKdLatency line ('brief', 'threadtime' or 'raw' logcat), or None.

    Returns {"error": text} for the app's error lines and marks its start-up line with "ready".
    """
    idx = line.find(TAG)
    if idx >= 0:
        rest = line[idx + len(TAG):]
        m = re.match(r"\s*\(\s*\d+\)\s*:\s?|\s*:\s?", rest)  # brief "( 123): " or threadtime ": "
        msg = (rest[m.end():] if m else rest).strip()
    else:
        msg = line.strip()  # logcat -v raw
    if msg.startswith("error="):
        return {"error": msg[len("error="):].strip()}
    pairs: dict = dict(PAIR_RE.findall(msg))
    if msg.startswith("ready "):
        pairs["ready"] = True
        return pairs
    if "latency_us" not in pairs:
        return None
    try:
        pairs["latency_us"] = int(pairs["latency_us"])
    except ValueError:
        return None
    return pairs


def summarize(records: list[dict]) -> dict:
    lat = sorted(r["latency_us"] for r in records)
    if not lat:
        return {"inferences": 0}
    p90 = lat[min(len(lat) - 1, int(round(0.9 * (len(lat) - 1))))]
    labels: dict[str, int] = {}
    for r in records:
        labels[r.get("label", "?")] = labels.get(r.get("label", "?"), 0) + 1
    return {
        "inferences": len(lat),
        "latency_us_median": statistics.median(lat),
        "latency_us_mean": round(statistics.fmean(lat), 1),
        "latency_us_p90": p90,
        "latency_us_min": lat[0],
        "latency_us_max": lat[-1],
        "delegate": records[-1].get("delegate", "?"),
        "labels": labels,
    }


def collect(adb: Adb, seconds: float, count: int, echo: bool) -> tuple[list[dict], str | None, dict | None]:
    """Read KwsKdLatency lines until `count` latencies, an app error, or `seconds` pass."""
    argv = adb.argv("logcat", "-v", "brief", "-s", f"{TAG}:V")
    if adb.verbose:
        print("+ " + " ".join(argv), file=sys.stderr)
    records: list[dict] = []
    ready = None
    error = None
    # Read from a temp file the child writes to: no pipe that can block, and a hard deadline.
    with tempfile.TemporaryFile(mode="w+") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + seconds
        pos = 0
        pending = ""
        try:
            while time.monotonic() < deadline and len(records) < count and error is None:
                time.sleep(0.1)
                sink.seek(pos)
                chunk = sink.read()
                pos = sink.tell()
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    parsed = parse_line(line)
                    if not parsed:
                        continue
                    if "error" in parsed:
                        error = parsed["error"]
                        break
                    if parsed.get("ready"):
                        ready = parsed
                        if echo:
                            print(line.strip())
                        continue
                    records.append(parsed)
                    if echo:
                        print(line.strip())
                    if len(records) >= count:
                        break
                if proc.poll() is not None and not chunk:
                    break  # logcat itself ended (device gone)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
    return records, error, ready


def write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="harness.py",
        description="Install the kws-kd sample app, run a .tflite in it on a phone and collect per-inference latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--model", required=True, type=Path, help="FILE.tflite; FILE.json must sit beside it")
    ap.add_argument("--apk", type=Path, default=DEFAULT_APK, help="the app's APK (./gradlew assembleDebug)")
    ap.add_argument("--skip-install", action="store_true", help="the app is already installed")
    ap.add_argument("--serial", help="device serial when several are attached")
    ap.add_argument("--adb", default=os.environ.get("ADB", "adb"), help="adb executable")
    ap.add_argument("--seconds", type=float, default=20.0, help="stop collecting after this long")
    ap.add_argument("--count", type=int, default=40, help="stop after this many inferences")
    ap.add_argument("--hop-ms", type=int, default=250)
    ap.add_argument("--smoothing", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpu", action="store_true", help="ask the app for the GPU delegate (falls back to XNNPACK)")
    ap.add_argument("--no-run-as", action="store_true",
                    help=f"pass the {REMOTE_STAGING} path to the app instead of copying into its files (release APKs)")
    ap.add_argument("--keep-running", action="store_true", help="leave the app running afterwards")
    ap.add_argument("--out", type=Path, help="write the summary and every latency as JSON here")
    ap.add_argument("--quiet", action="store_true", help="do not echo log lines")
    ap.add_argument("--verbose", action="store_true", help="print every adb command")
    return ap


def run(args: argparse.Namespace) -> int:
    if args.count <= 0 or args.seconds <= 0:
        raise HarnessError("--count and --seconds must be positive")
    if not shutil.which(args.adb) and not Path(args.adb).is_file():
        raise HarnessError(f"adb not found ('{args.adb}'; Debian: apt-get install adb)")
    adb = Adb(args.adb, None, args.verbose)
    serial = pick_device(list_devices(adb), args.serial)
    if serial is None:
        print(NO_DEVICE)
        return 0
    adb.serial = serial

    model = args.model
    sidecar = model.with_suffix(".json")
    if model.suffix != ".tflite" or not model.is_file():
        raise HarnessError(f"{model}: not a .tflite file")
    if not sidecar.is_file():
        raise HarnessError(f"{sidecar}: sidecar missing (kws-kd export writes FILE.json beside FILE.tflite)")
    try:
        json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{sidecar}: not valid JSON ({exc})") from None
    if not args.skip_install and not args.apk.is_file():
        raise HarnessError(f"{args.apk}: APK not found (build it: cd android_harness && ./gradlew assembleDebug)")

    print(f"device {serial}")
    if not args.skip_install:
        print(f"installing {args.apk.name}")
        adb.run("install", "-r", "-g", str(args.apk), timeout=180)
    adb.run("shell", "mkdir", "-p", REMOTE_STAGING, timeout=20)
    for f in (model, sidecar):
        adb.run("push", str(f), f"{REMOTE_STAGING}/{f.name}", timeout=120)
    if args.no_run_as:
        model_arg = f"{REMOTE_STAGING}/{model.name}"
    else:
        try:
            adb.run("shell", "run-as", PACKAGE, "mkdir", "-p", "files", timeout=20)
            for f in (model, sidecar):
                adb.run("shell", "run-as", PACKAGE, "cp", f"{REMOTE_STAGING}/{f.name}", f"files/{f.name}", timeout=60)
        except HarnessError as exc:
            raise HarnessError(f"{exc} (run-as needs the debug APK; otherwise use --no-run-as)") from None
        model_arg = model.name  # relative: the app resolves it in its files dir
    adb.run("shell", "pm", "grant", PACKAGE, "android.permission.RECORD_AUDIO", timeout=20, check=False)
    adb.run("logcat", "-c", timeout=20, check=False)
    start = adb.run(
        "shell", "am", "start", "-S", "-W", "-n", ACTIVITY,
        "--es", "model_path", model_arg,
        "--ei", "hop_ms", str(args.hop_ms),
        "--ei", "smoothing", str(args.smoothing),
        "--ef", "threshold", str(args.threshold),
        "--ei", "threads", str(args.threads),
        "--ez", "use_gpu", "true" if args.gpu else "false",
        timeout=60,
    )
    if "Error" in start.stdout or "Error" in start.stderr:
        raise HarnessError(f"am start failed: {(start.stdout + start.stderr).strip().splitlines()[-1]}")
    print(f"app started with {model_arg}; collecting up to {args.count} inferences for {args.seconds:g} s")
    try:
        records, error, ready = collect(adb, args.seconds, args.count, not args.quiet)
    finally:
        if not args.keep_running:
            adb.run("shell", "am", "force-stop", PACKAGE, timeout=20, check=False)
    if error:
        print(f"the app reported an error: {error}", file=sys.stderr)
        return 1
    summary = summarize(records)
    summary.update({"device": serial, "model": str(model), "hop_ms": args.hop_ms, "threads": args.threads,
                    "gpu_requested": args.gpu})
    if not records:
        print(f"no {TAG} lines within {args.seconds:g} s (is the microphone busy? check 'adb logcat')", file=sys.stderr)
        return 1
    print(
        f"{summary['inferences']} inferences on {serial} ({summary['delegate']}): "
        f"median {summary['latency_us_median'] / 1000:.2f} ms, mean {summary['latency_us_mean'] / 1000:.2f} ms, "
        f"p90 {summary['latency_us_p90'] / 1000:.2f} ms, min {summary['latency_us_min'] / 1000:.2f} ms, "
        f"max {summary['latency_us_max'] / 1000:.2f} ms"
    )
    print("labels: " + ", ".join(f"{k} x{v}" for k, v in sorted(summary["labels"].items(), key=lambda kv: -kv[1])))
    if args.out:
        write_json_atomic(args.out, {"summary": summary, "ready": ready, "inferences": records})
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except HarnessError as exc:
        print(f"harness.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
