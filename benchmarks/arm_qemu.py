"""Run .tflite files on emulated aarch64 (qemu-user + the ai-edge-litert aarch64 wheel), XNNPACK on.

Thin wrapper over kws_kd.bench.arm (same as `kws-kd bench arm`): checks each
file loads and runs in the ARM build of LiteRT and that its output matches the
x86 host. Emulated wall time is not a latency and is not reported;
instructions per inference are not measurable with Debian 12's qemu (see
kws_kd/bench/arm.py). Skips with a message when qemu-aarch64-static is absent.

    python benchmarks/arm_qemu.py /tmp/kws-kd-bench/*_1s_*.tflite --json docs/arm_qemu.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from kws_kd.atomic import atomic_write_text
    from kws_kd.bench.arm import ArmUnavailable, run_arm
    from kws_kd.errors import KwsKdError

    rows = []
    print(f"{'model':36s} {'XNNPACK':>7s} {'max|diff| vs x86':>17s} {'bit-identical':>13s}")
    for model in args.models:
        try:
            r = run_arm(model)
        except ArmUnavailable as exc:
            print(f"skipped: {exc}")
            return 0
        except KwsKdError as exc:
            r = {"model": Path(model).name, "error": str(exc)}
            print(f"{r['model']:36s} FAILED: {exc}")
            rows.append(r)
            continue
        rows.append(r)
        print(f"{r['model']:36s} {str(r['xnnpack']):>7s} {r['max_abs_diff_vs_host']:17.3g} {str(r['identical_to_host']):>13s}")
    if rows:
        print(f"instructions per inference: {rows[0].get('instructions_note', '')}")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
