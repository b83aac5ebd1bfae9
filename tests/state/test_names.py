"""Free-text ids as names on disk and in git: kept when already safe, distinct when not."""

from __future__ import annotations

import pytest

from parallel_coordinator.state.names import safe_name


@pytest.mark.parametrize("name", ["t1", "plan-step_2", "abc123"])
def test_already_safe_names_are_kept_as_they_are(name: str) -> None:
    assert safe_name(name) == name


def test_unsafe_names_that_look_alike_stay_distinct() -> None:
    names = ["a b", "a/b", "a-b", "A-B", "a--b", "a_b"]
    assert len({safe_name(n) for n in names}) == len(names)
