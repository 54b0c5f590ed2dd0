"""The dependency rules of the house style, checked on the source: no import circles, no imports
hidden inside functions, `aimodel` independent of the other apps, nothing importing `devtools`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "aimodel", "config", "core", "media", "quota", "tasks")
# aimodel gets ids, URLs and bytes and returns results; the shared kernel is all it may use.
AIMODEL_MAY_IMPORT = {"aimodel", "core"}


def _product_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _product_modules()


def _resolve(name: str) -> str | None:
    """The product module an import names (a module, or the package owning a name), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node, node.module
            for alias in node.names:
                yield node, f"{node.module}.{alias.name}"


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = {_resolve(imported) for _, imported in _imports(tree)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_between_product_modules() -> None:
    assert "tasks.lifecycle" in _graph()["tasks.processing"]  # the graph sees real edges
    assert _cycle(_graph()) is None, "import circle: " + " → ".join(_cycle(_graph()) or [])


def test_the_circle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_product_import_inside_a_function() -> None:
    hidden = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            # AppConfig.ready() is where Django wants start-up registrations imported.
            if path.name == "apps.py" and function.name == "ready":
                continue
            for node, imported in _imports(ast.Module(body=function.body, type_ignores=[])):
                if _resolve(imported):
                    hidden.append(f"{name}:{node.lineno} imports {imported}")
    assert not hidden, "\n".join(hidden)


def test_aimodel_imports_no_other_app() -> None:
    graph = _graph()
    outside = {
        f"{name} → {target}"
        for name, targets in graph.items()
        if name.startswith("aimodel")
        for target in targets
        if target.split(".")[0] not in AIMODEL_MAY_IMPORT
    }
    assert not outside, sorted(outside)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_nothing_in_the_product_imports_devtools(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    assert not [imported for _, imported in _imports(tree) if imported.split(".")[0] == "devtools"]
