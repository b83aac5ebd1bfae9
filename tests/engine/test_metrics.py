"""Estimates against known schedules, alerts, and the figures the metrics report from real runs."""

from __future__ import annotations

import pytest

from parallel_coordinator.config.settings import AlertLimits
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.figures import find_alerts
from parallel_coordinator.planning.estimates import DurationEstimator, remaining_seconds
from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.views import performance_metrics, session_metrics
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER
from tests.engine.test_failures import finish

pytestmark = pytest.mark.anyio


def graph() -> TaskGraph:
    return TaskGraph([
        TaskNode("a", "x", "coder"),
        TaskNode("b", "x", "reviewer", dependencies=("a",)),
        TaskNode("c", "x", "coder"),
    ])


def test_the_estimate_is_the_critical_path_when_slots_are_plenty() -> None:
    assert remaining_seconds(graph(), {"a": 10, "b": 20, "c": 5}, slots=2) == 30


def test_the_estimate_is_the_work_spread_over_the_slots_when_they_are_few() -> None:
    assert remaining_seconds(graph(), {"a": 10, "b": 20, "c": 5}, slots=1) == 35


def test_finished_and_partly_done_tasks_only_count_what_is_left() -> None:
    assert remaining_seconds(graph(), {"a": 6, "b": 20, "c": 0}, slots=4) == 26


def test_recent_runs_weigh_more_and_a_prior_or_default_stands_in_before_any() -> None:
    estimator = DurationEstimator(alpha=0.5, default_s=42)
    assert estimator.estimate("coder") == 42
    assert estimator.estimate("coder", prior_s=7) == 7
    estimator.observe("coder", 10)
    estimator.observe("coder", 20)
    assert estimator.estimate("coder", prior_s=7) == 15


def test_alerts_flag_error_rate_load_throughput_and_an_agent_failing_repeatedly() -> None:
    limits = AlertLimits(max_error_rate=0.05, max_cpu_percent=80, max_memory_percent=90, min_throughput_per_min=2)
    alerts = find_alerts(
        limits, error_rate=0.5, cpu_percent=95, memory_percent=91, throughput_per_min=1,
        outcomes=[("flaky", True), ("flaky", True), ("flaky", True), ("steady", True), ("steady", False)],
    )
    assert alerts == [
        "error rate 50% is over 5%",
        "CPU at 95%, at or over the 80% limit",
        "memory at 91%, at or over the 90% limit",
        "throughput 1.00 tasks/min is under 2",
        "agent 'flaky' failed its last 3 runs",
    ]
    assert find_alerts(limits, error_rate=0.0, cpu_percent=10, memory_percent=10, throughput_per_min=5) == []


async def test_metrics_report_per_agent_figures_and_alerts_from_real_runs(coordinator: Coordinator) -> None:
    options = CoordinateOptions.model_validate({"wait_seconds": 0})
    session = await finish(coordinator, [
        Subtask.model_validate({"id": "bad", "description": "x", "agent_type": "failer",
                                "retry_policy": {"max_attempts": 3, "backoff_seconds": 0.01}}),
        Subtask(id="good", description="x", agent_type="echo"),
    ], options)
    metrics = session_metrics(coordinator.snapshot(session))
    assert metrics.agents["failer"].runs == 3 and metrics.agents["failer"].failures == 3
    assert metrics.agents["echo"].runs == 1 and metrics.agents["echo"].failures == 0
    assert metrics.success_rate == 0.5
    assert "agent 'failer' failed its last 3 runs" in metrics.alerts
    server_wide = performance_metrics(coordinator.store, coordinator.health())
    assert "agent 'failer' failed its last 3 runs" in server_wide.alerts
    assert any(alert.startswith("error rate 75%") for alert in server_wide.alerts)
    assert server_wide.performance.success_rate == 0.25


async def test_tokens_and_cost_are_totalled_per_session_and_per_agent(
    coordinator: Coordinator, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    session = await finish(coordinator, [
        Subtask(id=f"r{i}", description=f"review part {i}", agent_type="reviewer") for i in range(2)
    ], CoordinateOptions(wait_seconds=0))
    metrics = session_metrics(coordinator.snapshot(session))
    per_task = [session.tasks[f"r{i}"] for i in range(2)]
    assert metrics.input_tokens == sum(t.input_tokens or 0 for t in per_task) > 0
    assert metrics.cost_usd == pytest.approx(sum(t.cost_usd or 0 for t in per_task))
    server_wide = performance_metrics(coordinator.store, coordinator.health())
    assert server_wide.agents["reviewer"].input_tokens == metrics.input_tokens
    assert server_wide.cost_usd == pytest.approx(metrics.cost_usd)
