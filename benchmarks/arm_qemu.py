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

REPO = Path(__file__).resolve().parents[1]


def render_markdown(rows: list[dict], latency_json: Path = REPO / "docs" / "latency.json") -> str:
    """Table of ARM rows; MACs per instruction where host_latency.py measured the same file name."""
    macs = {}
    if latency_json.exists():
        for r in json.loads(latency_json.read_text())["students"]:
            macs[f"{r['student']}_{r['seconds']:g}s_{r['mode']}.tflite"] = r["macs"]
    lines = ["| file | XNNPACK | max abs logit diff vs x86 | bit-identical | instructions per inference | MACs per instruction |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} |||||")
            continue
        count = r.get("instructions_per_inference")
        ratio = f"{macs[r['model']] / count:.2f}" if count and r["model"] in macs else "-"
        lines.append(f"| {r['model']} | {'yes' if r['xnnpack'] else 'no'} | {r['max_abs_diff_vs_host']:.3g} "
                     f"| {'yes' if r['identical_to_host'] else 'no'} | {'-' if count is None else format(count, ',')} "
                     f"| {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--json", default=None)
    p.add_argument("--instructions", action="store_true", help="count aarch64 instructions per inference")
    p.add_argument("--markdown", action="store_true",
                   help="only print the markdown table of --json (MACs from docs/latency.json where the file names match)")
    args = p.parse_args(argv)
    if args.markdown:
        if not args.json:
            p.error("--markdown reads the table from --json FILE")
        print(render_markdown(json.loads(Path(args.json).read_text())))
        return 0
    if not args.models:
        p.error("give one or more .tflite files")
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
