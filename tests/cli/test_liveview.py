"""The terminal's live view says why tasks wait, which tasks only wait for a twin, and fits its agent lines
to the terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import selectors
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from parallel_coordinator.cli.liveview import render_status
from parallel_coordinator.schemas.outputs import (
    ActiveAgent,
    BudgetFigures,
    ForecastFigures,
    ProgressStatus,
    SpendFigures,
)
from tests.cli.test_cli import environment
from tests.conftest import AgentFactory


def rendered(status: ProgressStatus) -> str:
    console = Console(record=True, width=200)
    console.print(render_status(status))
    return console.export_text()


def test_the_live_bar_shows_why_ready_tasks_wait_and_twins_apart_from_running_agents() -> None:
    status = ProgressStatus(
        session_id="s1", status="RUNNING", total_tasks=5, completed=0, in_progress=3, failed=0, pending=2,
        cancelled=0, skipped=0, agents_active=[ActiveAgent(agent="echo", task_id="t0", elapsed_s=1.0)],
        waiting_on_twins={"t1": "t0", "t2": "t0"},
        queue_reason="waiting for CPU: our agents use 95% of the machine's cores, limit 80%",
    )
    text = rendered(status)
    assert "1 running · 2 waiting for a twin" in text
    assert "waiting: waiting for CPU: our agents use 95%" in text


def test_more_agents_than_the_terminal_has_lines_are_counted_not_drawn() -> None:
    active = [ActiveAgent(agent="echo", task_id=f"t{i:02d}", elapsed_s=1.0) for i in range(64)]
    status = ProgressStatus(
        session_id="s1", status="RUNNING", total_tasks=64, completed=0, in_progress=64, failed=0, pending=0,
        cancelled=0, skipped=0, agents_active=active,
    )
    console = Console(record=True, width=200)
    console.print(render_status(status, max_rows=10))
    text = console.export_text()
    assert [f"t{i:02d}" in text for i in range(64)] == [True] * 9 + [False] * 55
    assert "… and 55 more running" in text


def test_the_live_bar_shows_spend_against_budget_and_forecast() -> None:
    status = ProgressStatus(
        session_id="s1", status="RUNNING", total_tasks=5, completed=1, in_progress=1, failed=0, pending=3,
        cancelled=0, skipped=0, spent=SpendFigures(tokens=16_585, usd=0.0159, seconds=3.2),
        budget=BudgetFigures(tokens=20_000, seconds=600), forecast=ForecastFigures(runs=5, tokens=90_000, usd=0.34,
                                                                                   seconds=60),
    )
    assert "spent 16,585 tokens, $0.0159 of budget 20,000 tokens, 600 s · forecast 90,000 tokens, $0.34" in (
        rendered(status)
    )


def test_a_session_that_spends_nothing_and_has_no_budget_shows_no_spend_line() -> None:
    status = ProgressStatus(
        session_id="s1", status="RUNNING", total_tasks=1, completed=0, in_progress=1, failed=0, pending=0,
        cancelled=0, skipped=0, spent=SpendFigures(tokens=0, usd=0, seconds=1),
    )
    assert "spent" not in rendered(status)


def test_a_log_line_during_the_live_view_is_printed_through_it_not_across_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io
    import logging
    import sys

    from rich.live import Live

    from parallel_coordinator.cli.liveview import logs_above_live

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Live("the live view", console=console, auto_refresh=False) as live, logs_above_live():
            live.refresh()
            logging.getLogger("parallel_coordinator.test").warning("a log line mid-run")
        logging.getLogger("parallel_coordinator.test").warning("after the live view")
    finally:
        root.removeHandler(handler)
    assert "a log line mid-run" in screen.getvalue()  # drawn by rich, above the view
    stderr = capsys.readouterr().err
    assert "a log line mid-run" not in stderr and "after the live view" in stderr  # the handler is given back


def test_the_live_bar_splits_pending_tasks_into_ready_and_waiting_on_dependencies_and_shows_the_eta() -> None:
    in_ninety_seconds = datetime.fromtimestamp(time.time() + 90.4, UTC).isoformat()
    status = ProgressStatus(
        session_id="s1", status="RUNNING", total_tasks=8, completed=1, in_progress=2, failed=0, pending=5,
        cancelled=0, skipped=0, ready=2, estimated_completion=in_ninety_seconds,
        queue_reason="all 2 of the session's agent slots are busy (max_agents)",
    )
    text = rendered(status)
    assert "5 pending (2 ready, 3 on dependencies)" in text
    assert re.search(r"ETA 1m [0-3][0-9]s", text), text  # counting down from 1m 30s, however slow the machine
    assert "waiting: all 2 of the session's agent slots are busy (max_agents)" in text


def test_an_ended_session_or_one_without_an_estimate_shows_no_eta() -> None:
    soon = datetime.fromtimestamp(time.time() + 30, UTC).isoformat()
    ended = ProgressStatus(session_id="s1", status="SUCCESS", total_tasks=1, completed=1, in_progress=0, failed=0,
                           pending=0, cancelled=0, skipped=0, estimated_completion=soon)
    unknown = ended.model_copy(update={"status": "RUNNING", "estimated_completion": None})
    assert "ETA" not in rendered(ended) and "ETA" not in rendered(unknown)


def test_run_on_a_terminal_shows_the_eta_and_why_pending_tasks_wait(tmp_path: Path, agents: AgentFactory) -> None:
    gate = tmp_path / "gate"
    agents.script("gated", f"""
        import os, time
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.02)
        print("done")
    """)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "three at one slot",
        "subtasks": [{"id": "a", "description": "x", "agent_type": "gated"},
                     {"id": "b", "description": "y", "agent_type": "gated"},
                     {"id": "c", "description": "z", "agent_type": "gated", "dependencies": ["a"]}],
        "options": {"max_agents": 1},
    }))
    controller, terminal = pty.openpty()  # rich draws the live view only on a terminal
    env = {**os.environ, **environment(tmp_path, agents), "COLUMNS": "220", "LINES": "40", "TERM": "xterm"}
    with subprocess.Popen([sys.executable, "-m", "parallel_coordinator", "run", str(plan)], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal) as run:
        os.close(terminal)
        screen, shown, deadline = "", False, time.monotonic() + 60
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(controller, selectors.EVENT_READ)
                # Read the terminal until the view shows all three, then until the run ends (a terminal nobody
                # reads would fill and stall the run).
                while run.poll() is None:
                    assert time.monotonic() < deadline, screen[-2000:]
                    if selector.select(timeout=0.5):
                        with contextlib.suppress(OSError):  # EIO: the run closed its end
                            screen += os.read(controller, 65536).decode(errors="replace")
                    if not shown and ("ETA" in screen and "2 pending (1 ready, 1 on dependencies)" in screen
                                      and "all 1 of the session's agent slots are busy" in screen):
                        shown = True
                        gate.touch()
        finally:
            gate.touch()  # however the test ends, the agents end and the run with them
            os.close(controller)
        assert shown, screen[-2000:]
        out = run.stdout.read() if run.stdout else b""
    assert run.returncode == 0 and "succeeded" in out.decode()
