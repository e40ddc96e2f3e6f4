"""Layers one way: no module of kws_kd/ or export/ imports a module that imports it back.

Every import counts, function-local ones included: a cycle hidden inside a
function still ties two layers together. Relative imports are resolved, and
`from a import b` counts as an import of the submodule `a.b` when there is one
(otherwise of `a`). Importing a submodule also runs its package's
`__init__.py`, but an `__init__` re-exporting its own submodules is not a
cycle, so package parents are not added as edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("kws_kd", "export")


def module_files() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:  # `import kws_kd.x.y` where y is a name, not a module
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, set(comp)) for comp in components]


def _one_cycle(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A concrete path start -> ... -> start inside one component, for the failure message."""
    start = min(comp)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (one path through each tangle):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_finder_sees_function_local_and_relative_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "x.py").write_text("def f():\n    from . import y\n")
    (pkg / "y.py").write_text("from p.x import f\n")
    known = {"p", "p.x", "p.y"}
    assert imports_of("p.x", pkg / "x.py", known) == {"p.y"}
    assert imports_of("p.y", pkg / "y.py", known) == {"p.x"}
    assert find_cycles({"p.x": {"p.y"}, "p.y": {"p.x"}}) == [["p.x", "p.y", "p.x"]]


def test_tflite_does_not_import_bench():
    graph = import_graph()
    bad = {m: sorted(d for d in deps if d.startswith("kws_kd.bench")) for m, deps in graph.items()
           if m.startswith("kws_kd.tflite")}
    bad = {m: deps for m, deps in bad.items() if deps}
    assert not bad, f"kws_kd.tflite modules importing kws_kd.bench: {bad}"


def test_benchmarks_import_the_installed_package_without_path_hacks():
    hacks = [str(p.relative_to(REPO)) for p in sorted((REPO / "benchmarks").glob("*.py"))
             if "sys.path.insert" in p.read_text(encoding="utf-8") or "PYTHONPATH=" in p.read_text(encoding="utf-8")]
    assert not hacks, f"benchmarks that patch the import path (kws_kd and export are installed): {hacks}"
