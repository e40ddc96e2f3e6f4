"""Run .tflite files on emulated aarch64 (qemu-user + the ai-edge-litert aarch64 wheel), XNNPACK on.

Thin wrapper over kws_kd.bench.arm (same as `kws-kd bench arm`): checks each
file loads and runs in the ARM build of LiteRT and that its output matches the
x86 host. Emulated wall time is not a latency and is not reported. With
`--instructions`, also counts aarch64 instructions per inference from qemu's
block logs (kws_kd/bench/arm_instructions.py). Skips with a message when
qemu-aarch64-static is absent.

    python benchmarks/arm_qemu.py /tmp/kws-kd-bench/*_1s_*.tflite --instructions --json docs/arm_qemu.json
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
    p.add_argument("--instructions", action="store_true", help="count aarch64 instructions per inference")
    args = p.parse_args(argv)
    from kws_kd.atomic import atomic_write_text
    from kws_kd.bench.arm import ArmUnavailable, run_arm
    from kws_kd.errors import KwsKdError

    rows = []
    print(f"{'model':36s} {'XNNPACK':>7s} {'max|diff| vs x86':>17s} {'bit-identical':>13s} {'instructions':>13s}",
          flush=True)
    for model in args.models:
        try:
            r = run_arm(model, instructions=args.instructions)
        except ArmUnavailable as exc:
            print(f"skipped: {exc}")
            return 0
        except KwsKdError as exc:
            r = {"model": Path(model).name, "error": str(exc)}
            print(f"{r['model']:36s} FAILED: {exc}")
            rows.append(r)
            continue
        rows.append(r)
        count = r.get("instructions_per_inference")
        print(f"{r['model']:36s} {str(r['xnnpack']):>7s} {r['max_abs_diff_vs_host']:17.3g} "
              f"{str(r['identical_to_host']):>13s} {'-' if count is None else format(count, ','):>13s}", flush=True)
        if args.json:  # after every file: a long run keeps what it measured
            atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    if rows and not args.instructions:
        print(f"instructions per inference: {rows[0].get('instructions_note', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
