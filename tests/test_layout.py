"""The package's shape: no import cycle between its modules, and no module past the size that asks for a split.

Only imports that run when a module is imported count: module level (inside `if`, `try`, `with` and class
bodies too), not inside functions and not under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE_NAME = "parallel_coordinator"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / PACKAGE_NAME
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that runs when the module is imported: function bodies and TYPE_CHECKING blocks are not."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from _import_time_statements(statement.body)
            yield from _import_time_statements(statement.orelse)
        elif isinstance(statement, ast.Try | ast.TryStar):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from _import_time_statements(block)
            for handler in statement.handlers:
                yield from _import_time_statements(handler.body)
        elif isinstance(statement, ast.With | ast.ClassDef):
            yield from _import_time_statements(statement.body)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports when it is imported."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for statement in _import_time_statements(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            if statement.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (statement.level - 1)]
                source = ".".join([*base, statement.module] if statement.module else base)
            else:
                source = statement.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in statement.names)  # `from pkg import module`
    return {target for target in found if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm, then a path around)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest way from the group's first module back to itself, staying inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    return sorted(group)  # unreachable for a strongly connected group


def test_no_module_imports_itself_back_through_others() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join([*cycle, cycle[0]]) for cycle in found)


def test_the_cycle_finder_names_a_cycle_and_passes_a_tree() -> None:
    # The check above can only fail if this finds cycles where they are.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_imports_inside_functions_and_for_type_checking_do_not_count(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import parallel_coordinator.a\n"
        "if TYPE_CHECKING:\n    import parallel_coordinator.b\n"
        "try:\n    from parallel_coordinator import c\nexcept ImportError:\n    pass\n"
        "def f():\n    import parallel_coordinator.d\n",
        encoding="utf-8",
    )
    known = {f"parallel_coordinator.{name}" for name in "abcd"} | {"parallel_coordinator"}
    assert imports_of("parallel_coordinator.m", module, known) == {
        "parallel_coordinator", "parallel_coordinator.a", "parallel_coordinator.c",
    }


def oversized() -> dict[str, int]:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    return {name: size for name, size in sorted(sizes.items()) if size > MAX_MODULE_LINES}


def test_no_module_is_over_400_lines() -> None:
    found = oversized()
    assert not found, "modules over 400 lines: " + ", ".join(f"{name} ({size})" for name, size in found.items())
