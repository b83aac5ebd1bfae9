"""The performance metrics in Prometheus' text format, for `pcoord serve --transport http --prometheus`.

prometheus-client writes the exposition format (escaping, types, help lines) so we do not have to;
it is an optional extra, imported only when the endpoint is switched on.
"""

from __future__ import annotations

from parallel_coordinator.schemas.outputs import PerformanceMetrics


def exposition(metrics: PerformanceMetrics) -> bytes:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()

    def gauge(name: str, text: str, value: float, labels: dict[str, str] | None = None) -> None:
        metric = Gauge(f"pcoord_{name}", text, list(labels or {}), registry=registry)
        (metric.labels(**labels) if labels else metric).set(value)

    health, perf = metrics.system_health, metrics.performance
    gauge("cpu_percent", "Machine CPU use, percent of all cores.", health.cpu_percent)
    gauge("memory_used_megabytes", "Machine memory in use.", health.memory_used_mb)
    gauge("active_agents", "Agents running now.", health.active_agents)
    gauge("queue_size", "Tasks ready to start but waiting.", health.queue_size)
    gauge("error_rate", "Failed share of the last 1,000 runs.", health.error_rate)
    gauge("tasks_per_second", "Tasks succeeded per second over the last 1,000 runs.", perf.tasks_per_second)
    gauge("response_time_seconds_avg", "Average run time.", perf.avg_response_time_s)
    gauge("response_time_seconds_p95", "95th percentile run time.", perf.p95_response_time_s)
    gauge("success_rate", "Succeeded share of the last 1,000 runs.", perf.success_rate)
    gauge("parallel_efficiency", "Busy agent-seconds over available slot-seconds.", perf.parallel_efficiency)
    gauge("alerts", "Alerts raised now.", len(metrics.alerts))
    runs = Gauge("pcoord_agent_runs", "Runs per agent (last 1,000).", ["agent"], registry=registry)
    failures = Gauge("pcoord_agent_failures", "Failed runs per agent (last 1,000).", ["agent"], registry=registry)
    durations = Gauge("pcoord_agent_duration_seconds_avg", "Average run time per agent.", ["agent"], registry=registry)
    for name, figures in metrics.agents.items():
        runs.labels(agent=name).set(figures.runs)
        failures.labels(agent=name).set(figures.failures)
        durations.labels(agent=name).set(figures.avg_duration_s)
    return bytes(generate_latest(registry))
