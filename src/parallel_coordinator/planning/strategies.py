"""Strategies: how the subtasks a caller gives become the graph that runs.

`auto` and `hybrid` run the graph as given; `pipeline` chains the subtasks in the order given;
`parallel` runs them all at once and so refuses dependencies; `burst` is for many small tasks.
"""

from __future__ import annotations

from typing import Literal

from parallel_coordinator.errors import PlanError
from parallel_coordinator.schemas.inputs import Subtask

Strategy = Literal["auto", "parallel", "pipeline", "hybrid", "burst"]


def apply_strategy(subtasks: list[Subtask], strategy: Strategy) -> list[Subtask]:
    if strategy == "pipeline":
        return chain_pipeline(subtasks)
    if strategy == "parallel":
        refuse_dependencies(subtasks)
    return subtasks


def chain_pipeline(subtasks: list[Subtask]) -> list[Subtask]:
    """Each subtask depends on the one before it, in the order given."""
    chained = []
    for previous, current in zip([None, *subtasks], subtasks, strict=False):
        deps = list(current.dependencies)
        if previous is not None and previous.id not in deps:
            deps.append(previous.id)
        chained.append(current.model_copy(update={"dependencies": deps}))
    return chained


def refuse_dependencies(subtasks: list[Subtask]) -> None:
    """'parallel' means independent subtasks: dependencies are a sign the caller wanted 'hybrid'."""
    for sub in subtasks:
        if sub.dependencies:
            raise PlanError(
                f"strategy 'parallel' runs subtasks independently, but {sub.id!r} depends on"
                f" {sub.dependencies[0]!r}; use strategy 'hybrid' (or 'auto') to run a dependency graph"
            )
