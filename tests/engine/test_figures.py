"""The one definition of a failed attempt, and the figures and the report that count by it."""

from __future__ import annotations

import pytest

from parallel_coordinator.engine.figures import attempt_failed, attempt_figures
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.report import attempt_outcome
from parallel_coordinator.state.store import StoredAttempt, StoredSession, StoredTask
from parallel_coordinator.views import session_metrics

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("outcome", "error", "exit_code", "failed"),
    [
        ("exited", None, 0, False),
        ("exited", None, None, False),
        ("exited", "exited with status 1", 1, True),
        ("exited", None, 3, True),  # a runner that gave no error text still exited non-zero
        ("exited", "bad output", 0, True),
        ("timeout", "timed out", None, True),
        ("memory", "over its memory limit", None, True),
        ("spawn_failed", "no runner 'x'", None, True),
        ("rate_limited", "429", 1, True),
        ("lost", "the worker died", None, True),
        ("cancelled", "cancelled by the caller", None, False),
        ("running", None, None, False),
    ],
)
def test_an_attempt_failed_unless_it_exited_cleanly_was_cancelled_or_is_still_running(
    outcome: str, error: str | None, exit_code: int | None, failed: bool
) -> None:
    assert attempt_failed(outcome, error, exit_code) is failed


def test_the_session_figures_the_agent_figures_and_the_report_count_the_same_attempts_as_failed() -> None:
    ends = [
        ("exited", None, 0), ("exited", None, 3), ("exited", "exited with status 1", 1), ("timeout", "slow", None),
        ("spawn_failed", "no runner", None), ("exited", None, 0),
    ]
    attempts = [
        StoredAttempt("s", f"t{i}", 1, "echo", T0 + i, T0 + i + 0.5, code, outcome, error)
        for i, (outcome, error, code) in enumerate(ends)
    ]
    tasks = [
        StoredTask(a.task_id, "echo", "x", [], 0, "succeeded", {}, None, None, 1, a.started_at, a.finished_at,
                   None, None, None)
        for a in attempts
    ]
    stored = StoredSession("s", "x", "PARTIAL", {}, T0, T0 + 10, None, 4, None, tasks, attempts)

    assert sum(attempt_outcome(a) != "succeeded" for a in attempts) == 4
    assert attempt_figures(attempts).per_agent["echo"][1] == 4
    assert attempt_figures(attempts).error_rate == pytest.approx(4 / 6, abs=1e-4)
    assert session_metrics(view_of_stored(stored)).error_rate == pytest.approx(4 / 6, abs=1e-4)
