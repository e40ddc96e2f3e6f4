"""docs/architecture.md names every module of kws_kd/ (top level and one package down)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_module_is_named_in_the_architecture_page():
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(str(p.relative_to(REPO)) for pattern in ("kws_kd/*.py", "kws_kd/*/*.py")
                     for p in REPO.glob(pattern) if p.name != "__init__.py")
    missing = [m for m in modules if f"`{m}`" not in doc]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
