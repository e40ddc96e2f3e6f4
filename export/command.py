"""The torch side of `kws-kd teacher export|finetune`: `python -m export.command NAME OPTIONS_JSON`.

`kws_kd.cli.teacher` parses the command line (the one definition of its
flags) and starts this module in a child process, so torch is never imported
into a kws-kd process (docs/architecture.md). Errors are printed as the CLI
prints them, one line, exit status 2.
"""

from __future__ import annotations

import json
import sys

from kws_kd.errors import KwsKdError

PROG = "kws-kd teacher"


def run_export(options: dict) -> None:
    from export.export_store import export_store
    from kws_kd.rollout import RolloutOptions

    summary = export_store(**{**options, "rollout": RolloutOptions(**options["rollout"])})
    print(f"wrote {summary.num_clips} clips to {summary.shard_file} ({summary.clips_per_second:.2f} clips/s)")


def run_finetune(options: dict) -> None:
    from export.finetune import FinetuneOptions, finetune

    for key in ("clip_seconds", "clip_weights"):
        if options.get(key) is not None:
            options[key] = tuple(options[key])
    print(json.dumps(finetune(FinetuneOptions(**options)), indent=2))


COMMANDS = {"export": run_export, "finetune": run_finetune}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in COMMANDS:
        print(f"usage: python -m export.command {{{'|'.join(COMMANDS)}}} OPTIONS_JSON", file=sys.stderr)
        return 2
    try:
        COMMANDS[argv[0]](json.loads(argv[1]))
    except KwsKdError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"{PROG}: error: `kws-kd teacher {argv[0]}` needs torch and transformers: "
              f"pip install -e '.[teacher]' ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
