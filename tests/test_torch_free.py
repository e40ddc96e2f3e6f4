"""docs/architecture.md: kws_kd never imports torch; the teacher's torch runs in its own process.

Statically: no kws_kd module imports torch, transformers or the torch side
(`export/`), function-local imports included (`kws-kd teacher` hands the parsed
options to `python -m export.command` in a child process). Dynamically: a
process that has TensorFlow loaded runs `kws-kd teacher rollout` and a
failing `kws-kd teacher export` without torch appearing in it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TORCH_SIDE = ("torch", "torchaudio", "transformers", "accelerate", "export")


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_kws_kd_module_imports_torch_or_the_teacher_package():
    bad = {str(p.relative_to(REPO)): sorted(_imported_roots(p) & set(TORCH_SIDE))
           for p in sorted((REPO / "kws_kd").rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_export_never_imports_tensorflow():
    bad = {str(p.relative_to(REPO)): sorted(_imported_roots(p) & {"tensorflow", "keras"})
           for p in sorted((REPO / "export").rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_teacher_commands_in_a_tensorflow_process_never_load_torch(tmp_path):
    np.save(tmp_path / "maps.npy", np.full((2, 1, 4, 4), 0.25, np.float32))
    code = textwrap.dedent(f"""
        import sys
        import tensorflow  # the TF process
        from kws_kd.cli.main import main
        assert main(["teacher", "rollout", "--attentions", {str(tmp_path / "maps.npy")!r},
                     "--out", {str(tmp_path / "r.npy")!r}]) == 0
        # a teacher folder that is not one: the child fails with one line, exit 2
        assert main(["teacher", "export", "--teacher", {str(tmp_path / "nope")!r}, "--data", {str(tmp_path)!r},
                     "--out", {str(tmp_path / "s")!r}, "--no-progress"]) == 2
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {TORCH_SIDE!r})
        assert not loaded, loaded
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
    assert (tmp_path / "r.npy").is_file()
    assert "kws-kd teacher: error:" in proc.stderr


def test_teacher_child_prints_one_line_errors_like_the_cli(capsys):
    pytest.importorskip("torch")
    from kws_kd.child import run_teacher_command

    assert run_teacher_command("export", {"teacher": "/nonexistent/teacher", "data": "/nonexistent/data",
                                          "out": "/nonexistent/out", "rollout": {}}) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kws-kd teacher: error:") and len(err.splitlines()) == 1, err
