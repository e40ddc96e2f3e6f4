"""`kws-kd plot-attention`: plot teacher rollout and student attention for a clip (paper Fig. 2)."""

from __future__ import annotations

from kws_kd.cli.common import add_command, not_implemented


def register(subparsers) -> None:
    parser = add_command(subparsers, "plot-attention", help="plot teacher rollout and student attention for a clip (paper Fig. 2)")
    parser.set_defaults(func=not_implemented("kws-kd plot-attention"))
