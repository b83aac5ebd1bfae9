"""The get_performance_metrics tool: machine health now, and figures over recent agent runs."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from parallel_coordinator.metrics import attempt_figures
from parallel_coordinator.schemas.outputs import (
    AgentFigures,
    PerformanceFigures,
    PerformanceMetrics,
    SystemHealth,
)
from parallel_coordinator.tools._context import coordinator_of

DESCRIPTION = """\
Report the coordinator's health and performance: machine CPU and memory, agents running and tasks
queued, and over the last 1,000 agent runs the throughput, average and p95 run time, success rate
and parallel efficiency, plus per-agent run counts, failures and average durations."""


async def get_performance_metrics(ctx: Context[Any, Any] | None = None) -> PerformanceMetrics:
    assert ctx is not None
    coordinator = coordinator_of(ctx)
    cpu, used_mb, memory_percent = coordinator.system.sample()
    figures = attempt_figures(coordinator.store.recent_attempts(1000))
    sessions = coordinator.active_sessions
    return PerformanceMetrics(
        system_health=SystemHealth(
            cpu_percent=cpu,
            memory_used_mb=used_mb,
            memory_percent=memory_percent,
            active_agents=coordinator.active_agents,
            queue_size=sum(s.scheduler.ready_count() for s in sessions),
            error_rate=figures.error_rate,
            queue_reasons=sorted({s.queue_reason for s in sessions if s.queue_reason}),
        ),
        performance=PerformanceFigures(
            tasks_per_second=figures.tasks_per_second,
            avg_response_time_s=figures.avg_response_time_s,
            p95_response_time_s=figures.p95_response_time_s,
            success_rate=figures.success_rate,
            parallel_efficiency=figures.parallel_efficiency,
        ),
        agents={
            name: AgentFigures(runs=runs, failures=failures, avg_duration_s=avg)
            for name, (runs, failures, avg) in figures.per_agent.items()
        },
    )



