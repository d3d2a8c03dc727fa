"""The package's modules import each other without a cycle (architecture rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import streme

ROOT = Path(streme.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every `streme` module `path` imports, at any level (function-local ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("streme"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # a submodule
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("streme"))
    return found


def test_no_import_cycles() -> None:
    graph = {module_name(p): imports_of(p) for p in ROOT.rglob("*.py")}
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert "streme.http.protocol" in graph  # the walk saw the package
