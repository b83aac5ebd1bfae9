"""Cyclomatic complexity of every Python function, read from the `ast` module.

Counted as radon does: 1 + each if, loop (and its else), except, with, extra bool operand,
comprehension (and its ifs) and non-wildcard match case; nested functions are scored on their own.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from parallel_coordinator.demo_agents._protocol import Request, md_table, plural, run, scan, target_dir

TITLE = "Python complexity"
DEFAULT_THRESHOLD = 10
TOP = 10

_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Scored:
    name: str
    location: str
    complexity: int


def _weight(node: ast.AST) -> int:
    if isinstance(node, ast.If | ast.IfExp | ast.With | ast.AsyncWith):
        return 1
    if isinstance(node, ast.For | ast.AsyncFor | ast.While):
        return 1 + bool(node.orelse)
    if isinstance(node, ast.Try | ast.TryStar):
        return len(node.handlers) + bool(node.orelse)
    if isinstance(node, ast.BoolOp):
        return len(node.values) - 1
    if isinstance(node, ast.comprehension):
        return 1 + len(node.ifs)
    if isinstance(node, ast.Match):
        # a bare `case _:` is the match's else, not a decision
        return sum(1 for case in node.cases if not (_is_wildcard(case.pattern) and case.guard is None))
    return 0


def _is_wildcard(pattern: ast.pattern) -> bool:
    return isinstance(pattern, ast.MatchAs) and pattern.pattern is None and pattern.name is None


def _decisions(node: ast.AST) -> int:
    total = 0
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue  # scored on their own
        total += _weight(child) + _decisions(child)
    return total


def complexity(function: _Function) -> int:
    return 1 + _decisions(function)


def functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, _Function]]:
    """Every function under `node` with its dotted name (`Class.method`, `outer.inner`)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child
            yield from functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from functions(child, f"{prefix}{child.name}.")
        else:
            yield from functions(child, prefix)


def analyse(request: Request) -> str:
    option = request.option("threshold")
    threshold = int(option) if option and option.isdigit() else DEFAULT_THRESHOLD
    scored: list[Scored] = []
    files = unparsable = 0
    for source in scan(target_dir(request)):
        if source.path.suffix not in (".py", ".pyw"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in the scanned code are not our news
                tree = ast.parse(source.text, filename=source.rel)
        except (SyntaxError, ValueError, RecursionError):
            unparsable += 1
            continue
        files += 1
        for name, node in functions(tree):
            scored.append(Scored(name, f"{source.rel}:{node.lineno}", complexity(node)))

    skipped = f" ({plural(unparsable, 'file')} could not be parsed)" if unparsable else ""
    if not scored:
        return f"## {TITLE}\n\nNo Python functions found in {plural(files, 'file')}{skipped}."
    ranked = sorted(scored, key=lambda s: (-s.complexity, s.location))
    average = sum(s.complexity for s in scored) / len(scored)
    over = sum(1 for s in scored if s.complexity > threshold)
    top = ranked[0]
    summary = (
        f"{plural(len(scored), 'function')} in {plural(files, 'Python file')}{skipped}; "
        f"average complexity {average:.1f}; {over} above {threshold}. "
        f"Most complex: `{top.name}` ({top.complexity}) at `{top.location}`."
    )
    rows = [[rank, f"`{s.name}`", f"`{s.location}`", s.complexity] for rank, s in enumerate(ranked[:TOP], 1)]
    table = md_table(["#", "Function", "Location", "Complexity"], rows, right=(0, 3))
    return f"## {TITLE}\n\n{summary}\n\n{table}"


if __name__ == "__main__":
    run(analyse)
