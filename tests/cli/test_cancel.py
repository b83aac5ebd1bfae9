"""`pcoord cancel SESSION` stops a session that another process on the state directory runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from parallel_coordinator.state.store import Store
from tests.cli.test_cli import environment, hanging_plan, pcoord
from tests.conftest import AgentFactory, alive


def test_cancel_stops_a_session_run_by_another_process_and_kills_its_agents(
    tmp_path: Path, agents: AgentFactory
) -> None:
    fifo, plan = hanging_plan(tmp_path, agents)
    env = environment(tmp_path, agents)
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "run", str(plan), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    ) as run:
        pids = json.loads(fifo.read_text())  # blocks until the agent is up
        store = Store(tmp_path / "state" / "state.db")
        ((session_id, _, _, _),) = store.recent_sessions()
        store.close()
        try:
            cancelled = pcoord("cancel", session_id, env=env)
            stdout, stderr = run.communicate(timeout=60)
        finally:
            if run.poll() is None:  # the cancel did not reach it: Ctrl-C kills the agent, not leaving it behind
                run.send_signal(signal.SIGINT)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(f"CANCELLED session {session_id}: 1 task(s) cancelled")
    assert run.returncode == 1, stderr
    assert json.loads(stdout)["status"] == "CANCELLED"
    assert alive(pids) == []

    again = pcoord("cancel", session_id, env=env)
    assert again.returncode == 0
    assert "had already ended: CANCELLED" in again.stdout


def test_cancel_names_an_unknown_session_and_where_it_looked(tmp_path: Path, agents: AgentFactory) -> None:
    env = environment(tmp_path, agents)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"task_description": "x", "subtasks": [
        {"id": "a", "description": "x", "agent_type": "echo"}]}))
    assert pcoord("run", str(plan), env=env).returncode == 0  # the state directory exists
    done = pcoord("cancel", "no-such-session", env=env)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert f"unknown session 'no-such-session' in '{tmp_path / 'state'}'" in message
    assert "`pcoord status` lists the recent sessions" in message
