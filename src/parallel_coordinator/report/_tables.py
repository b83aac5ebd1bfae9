"""The page's tables: the session's metrics with a row per agent, and every task with its error or output."""

from __future__ import annotations

from collections.abc import Sequence

from parallel_coordinator.engine.figures import attempt_figures
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.errors import first_line
from parallel_coordinator.report._text import cap, duration, esc
from parallel_coordinator.state.store import StoredSession
from parallel_coordinator.views import session_metrics
from parallel_coordinator.views._layout import css_name


def metrics_table(stored: StoredSession, peak: int) -> str:
    figures = session_metrics(view_of_stored(stored))
    per_agent = attempt_figures(stored.attempts).per_agent
    rows = [
        ("avg_task_time_s", "Average task time", duration(figures.avg_task_time_s)),
        ("p95_task_time_s", "p95 task time", duration(figures.p95_task_time_s)),
        ("throughput_per_min", "Throughput", f"{figures.throughput_per_min:.2f} tasks / min"),
        ("error_rate", "Error rate (of attempts)", f"{figures.error_rate:.1%}"),
        ("parallel_efficiency", "Parallel efficiency", f"{figures.parallel_efficiency:.1%}"),
        ("peak_parallelism", "Peak parallelism", f"{peak} of {stored.max_agents} slots"),
    ]
    input_tokens = [t.input_tokens for t in stored.tasks if t.input_tokens is not None]
    output_tokens = [t.output_tokens for t in stored.tasks if t.output_tokens is not None]
    costs = [t.cost_usd for t in stored.tasks if t.cost_usd is not None]
    if input_tokens or output_tokens:
        rows.append(("tokens", "Tokens (in / out)", f"{sum(input_tokens):,} / {sum(output_tokens):,}"))
    if costs:
        rows.append(("cost_usd", "Cost", f"${sum(costs):,.4f}"))
    body = "".join(
        f'<tr class="metric" data-metric="{key}"><th scope="row">{label}</th><td colspan="3">{esc(value)}</td></tr>'
        for key, label, value in rows
    )
    agents = "".join(
        f'<tr class="agent-metric" data-agent="{esc(name)}"><th scope="row">{esc(name)}</th>'
        f"<td>{runs}</td><td>{failures}</td><td>{duration(avg)}</td></tr>"
        for name, (runs, failures, avg) in per_agent.items()
    ) or '<tr><td colspan="4" class="muted">no finished attempt</td></tr>'
    return (
        '<table id="metrics"><tbody class="session-metrics">'
        f"{body}</tbody>"
        '<tbody class="agent-metrics"><tr class="subhead"><th scope="col">Agent</th><th scope="col">Runs</th>'
        f'<th scope="col">Failures</th><th scope="col">Avg duration</th></tr>{agents}</tbody></table>'
    )


def task_table(stored: StoredSession) -> str:
    last_agent = {a.task_id: a.agent for a in stored.attempts}
    rows = []
    for t in stored.tasks:
        took = t.finished_at - t.started_at if t.started_at and t.finished_at else None
        output = ""
        if t.output:
            shown = cap(t.output, 4000)
            output = f"<details><summary>output ({t.kept.chars:,} chars)</summary><pre>{esc(shown)}</pre></details>"
        rows.append(
            f'<tr data-task="{esc(t.task_id)}">'
            f'<td class="id" title="{esc(t.description[:500])}">{esc(t.task_id)}</td>'
            f"<td>{esc(last_agent.get(t.task_id, t.agent))}</td>"
            f'<td><span class="pill status-{css_name(t.status)}">{esc(t.status)}</span></td>'
            f'<td class="num">{t.attempts}</td><td class="num">{duration(took)}</td>'
            f'<td class="error" title="{esc(cap(t.error or "", 2000))}">'
            f"{esc(first_line(t.error))}{output}</td></tr>"
        )
    return (
        '<table id="tasks"><thead><tr><th>Task</th><th>Agent</th><th>Status</th><th class="num">Attempts</th>'
        f'<th class="num">Duration</th><th>Error / output</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def legend(kind: str, names: Sequence[str]) -> str:
    items = "".join(f'<span class="key"><i class="{kind}-{name}"></i>{name.replace("_", " ")}</span>' for name in names)
    return f'<div class="legend">{items}</div>'
