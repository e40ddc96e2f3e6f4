"""Run a command in a child process with its output passed through as it comes.

Why: the torch teacher must never share a process with TensorFlow
(docs/architecture.md), so `kws-kd teacher export|finetune` and the demo's
teacher stages run torch in a child. The child's stdout and stderr go to this
process's `sys.stdout` / `sys.stderr` chunk by chunk (progress stays live, and
a caller that swapped those streams, such as pytest's capsys, sees them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading


def run_relayed(cmd: list[str]) -> tuple[int, str]:
    """Run `cmd`; relay its output; return (exit status, the last non-empty line it wrote to stderr).

    Ctrl-C reaches the child too (same process group): we wait for it to stop
    cleanly (it may save state first) and return its status.
    """
    tail = [b""]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        out = threading.Thread(target=_relay, args=(proc.stdout, sys.stdout, None), daemon=True)
        out.start()
        try:
            _relay(proc.stderr, sys.stderr, tail)
            out.join()
            proc.wait()
        except KeyboardInterrupt:
            proc.wait()
    lines = tail[0].decode(errors="replace").replace("\r", "\n").strip().splitlines()
    return proc.returncode, lines[-1] if lines else ""


def _relay(source, sink, tail: list | None) -> None:
    while chunk := source.read1(4096):
        sink.write(chunk.decode(errors="replace"))
        sink.flush()
        if tail is not None:
            tail[0] = (tail[0] + chunk)[-4096:]


def run_teacher_command(name: str, options: dict) -> int:
    """`export.command NAME` (torch) in a child process; returns its exit status (it prints its own errors)."""
    status, _ = run_relayed([sys.executable, "-m", "export.command", name, json.dumps(options)])
    return status
