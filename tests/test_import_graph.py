"""Layers point one way: gankit's modules import each other without cycles, counting the imports
inside functions too (a lazy import hides a cycle; it does not remove it). The one exception is
the registry, which imports the built-in models, recipes and datasets on first use."""

from __future__ import annotations

import ast
from pathlib import Path

import gankit

SOURCE = Path(gankit.__file__).parent
LAZY_LOADERS = {"gankit.registry"}  # its lazy loading of the built-ins is the allowed cycle


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SOURCE.rglob("*.py"):
        parts = ("gankit", *path.relative_to(SOURCE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The gankit modules `path` imports anywhere in its code (a package's `from P import name`
    counts as importing the submodule P.name where there is one)."""

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {owner(a.name) for a in node.names if a.name.startswith("gankit")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gankit"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else owner(node.module))
    return found - {""}


def import_graph() -> dict[str, set[str]]:
    """Module -> the gankit modules it imports (the lazy loaders' imports left out)."""
    modules = _modules()
    return {
        name: set() if name in LAZY_LOADERS else _imports(path, modules) - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_gankit_imports_have_no_cycle() -> None:
    assert cycles(import_graph()) == []


def test_sampling_tools_never_import_the_training_loop() -> None:
    """generate, evaluate and the plots rebuild nets from gankit.nets, not from train.run."""
    graph = import_graph()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for w in graph.get(todo.pop(), ()):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    for tool in ("gankit.generate", "gankit.evaluate", "gankit.viz.report", "gankit.nets"):
        assert not {"gankit.train.run", "gankit.train.loop"} & reaches(tool), tool
