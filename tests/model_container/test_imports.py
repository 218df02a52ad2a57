"""The avm package's modules import each other one way: no cycle, deferred imports included.

`cli` checks input before the heavy imports and loads `run` inside main(); `run` must not import
`cli` back (it takes any ``log`` callable), or the two could only ever be loaded together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import avm

PACKAGE = Path(avm.__file__).parent
MODULES = {p.stem: p for p in PACKAGE.glob("*.py")}


def source(node: ast.ImportFrom) -> str:
    """The dotted module a ``from ... import`` reads (a relative one is in this package)."""
    if not node.level:
        return node.module or ""
    return "avm" + (f".{node.module}" if node.module else "")


def imported(name: str) -> set[str]:
    """The avm modules ``name`` imports anywhere in its source (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = source(node)
            # `from . import x` / `from avm import x`: x may be a module or a name of __init__
            dotted = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for path in dotted:
            parts = path.split(".")
            if parts[0] == "avm":
                module = parts[1] if len(parts) > 1 and parts[1] in MODULES else "__init__"
                if module != name:
                    found.add(module)
    return found


GRAPH = {name: imported(name) for name in MODULES}


def cycle() -> list[str] | None:
    """One import cycle among avm's modules, as a path that comes back to its start, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(GRAPH[name]):
            found = visit(target, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for start in sorted(GRAPH):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    """The parser finds top-level, relative and deferred imports (else "no cycle" proves nothing)."""
    assert {"cli", "run", "config", "__init__", "__main__"} <= set(MODULES)
    assert GRAPH["__main__"] == {"cli"}
    assert {"config", "run"} <= GRAPH["cli"]  # run: imported inside main()
    assert {"__init__", "config", "data", "model"} <= GRAPH["run"] and "stats" not in GRAPH["run"]


def test_cli_and_run_depend_one_way() -> None:
    assert "cli" not in GRAPH["run"]
    assert "run" in GRAPH["cli"]


def test_no_import_cycle_in_avm() -> None:
    assert cycle() is None, " -> ".join(cycle() or [])
