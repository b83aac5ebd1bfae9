"""The exception tree: one root, drawn in errors.py's docstring, and every error we raise on purpose under it."""

from __future__ import annotations

import inspect

import parallel_coordinator.errors as errors
from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.execution import worktrees


def _error_classes() -> list[type[BaseException]]:
    return [
        value for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__
    ]


def test_every_error_class_is_under_the_root_and_drawn_in_the_tree() -> None:
    drawn = errors.__doc__ or ""
    for error in _error_classes():
        assert issubclass(error, CoordinatorError), error.__name__
        assert f" {error.__name__} " in drawn, f"{error.__name__} is missing from the tree in errors.py's docstring"


def test_a_worktree_error_is_a_coordinator_error_wherever_it_is_imported_from() -> None:
    assert worktrees.WorktreeError is errors.WorktreeError
    assert issubclass(worktrees.WorktreeError, CoordinatorError)
