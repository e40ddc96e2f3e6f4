"""`kws-kd bench`: latency and size benchmarks (host LiteRT, ARM under qemu, phone over adb)."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "bench", help="latency and size benchmarks (host LiteRT, ARM under qemu, phone over adb)")
    parser.set_defaults(func=not_implemented("kws-kd bench"))
