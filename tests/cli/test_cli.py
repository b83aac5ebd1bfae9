"""The `pcoord` command as a user runs it: agents, run (with its exit codes and Ctrl-C), demo."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import AgentFactory, alive
from tests.server.test_stdio import HANG_AND_REPORT


def pcoord(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallel_coordinator", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120, **kwargs,  # type: ignore[call-overload]
    )


def environment(tmp_path: Path, agents: AgentFactory) -> dict[str, str]:
    return {"PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root),
            "HOME": str(tmp_path / "home")}


def test_agents_json_lists_agents_and_diagnostics(tmp_path: Path, agents: AgentFactory) -> None:
    (agents.root / "broken.md").write_text("no front matter at all\n")
    done = pcoord("agents", "--json", env=environment(tmp_path, agents))
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert {a["name"] for a in listing["agents"]} == {"echo", "failer"}
    assert [Path(d["path"]).name for d in listing["diagnostics"]] == ["broken.md"]


def test_agents_says_where_a_symlinked_tree_took_the_search_past_its_bounds(
    tmp_path: Path, agents: AgentFactory
) -> None:
    deep = tmp_path.joinpath("elsewhere", *(f"level-{i}" for i in range(12)))
    deep.mkdir(parents=True)
    (agents.root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    done = pcoord("agents", env={**environment(tmp_path, agents), "COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    assert "2 agents" in done.stdout
    assert "1 files skipped or repaired" in done.stdout
    assert f"{agents.root}" in done.stdout and "levels deep was not searched" in done.stdout
    assert f"{agents.root / 'linked' / 'level-0'}" in done.stdout


def test_run_executes_a_plan_file_and_exits_by_its_outcome(tmp_path: Path, agents: AgentFactory) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "two steps",
        "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"},
                     {"id": "b", "description": "y", "agent_type": "echo", "dependencies": ["a"]}],
    }))
    done = pcoord("run", str(plan), "--json", env=environment(tmp_path, agents))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCESS"
    assert [r["output"].strip() for r in result["results"]] == ["a done", "b done a<a done>"]

    plan.write_text(yaml.safe_dump({
        "task_description": "one fails",
        "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"},
                     {"id": "b", "description": "y", "agent_type": "failer"}],
        "options": {"retry_attempts": 1},
    }))
    done = pcoord("run", str(plan), env=environment(tmp_path, agents))
    assert done.returncode == 1
    assert "PARTIAL" in done.stdout


def test_run_names_a_plan_file_it_cannot_use(tmp_path: Path, agents: AgentFactory) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("task_description: x\nsubtasks: [{id: a, description: x, agent_type: nobody}]\n")
    done = pcoord("run", str(plan), env=environment(tmp_path, agents))
    assert done.returncode == 1
    assert "unknown agent 'nobody'" in done.stderr
    done = pcoord("run", str(tmp_path / "missing.yaml"), env=environment(tmp_path, agents))
    assert done.returncode == 1
    assert "missing.yaml" in done.stderr


def hanging_plan(tmp_path: Path, agents: AgentFactory) -> tuple[Path, Path]:
    """A plan file of one agent that hangs once up, and the FIFO it reports its pids on when it is."""
    agents.script("hang", HANG_AND_REPORT)
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({
        "task_description": "hang", "subtasks": [{"id": "h", "description": str(fifo), "agent_type": "hang"}],
    }))
    return fifo, plan


def test_ctrl_c_cancels_the_run_kills_its_agents_and_exits_130(tmp_path: Path, agents: AgentFactory) -> None:
    fifo, plan = hanging_plan(tmp_path, agents)
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "run", str(plan)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **environment(tmp_path, agents)},
    ) as run:
        pids = json.loads(fifo.read_text())  # blocks until the agent is up
        run.send_signal(signal.SIGINT)
        stdout, _ = run.communicate(timeout=60)
    assert run.returncode == 130
    assert "CANCELLED" in stdout
    assert alive(pids) == []


def test_ctrl_c_at_a_terminal_cancels_the_tasks_and_counts_no_error(tmp_path: Path, agents: AgentFactory) -> None:
    """A terminal's Ctrl-C reaches the whole foreground group, pool workers included, not just pcoord."""
    fifo, plan = hanging_plan(tmp_path, agents)
    env = {**os.environ, **environment(tmp_path, agents)}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "run", str(plan), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    ) as run:
        pids = json.loads(fifo.read_text())  # blocks until the agent is up
        os.killpg(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    (task,) = json.loads(stdout)["results"]
    assert task["status"] == "cancelled" and "died" not in (task["error"] or "")
    assert [a["outcome"] for a in task["attempt_log"]] == ["cancelled"]
    assert alive(pids) == []
    metrics = subprocess.run([sys.executable, "-m", "parallel_coordinator", "metrics", "--json"],
                             capture_output=True, text=True, env=env, timeout=60, check=True)
    figures = json.loads(metrics.stdout)
    # No alert about the runs; the machine's own CPU and memory alerts depend on whatever else runs here.
    run_alerts = [a for a in figures["alerts"] if not a.startswith(("CPU at", "memory at"))]
    assert figures["system_health"]["error_rate"] == 0 and run_alerts == []


def test_demo_runs_the_bundled_agents_through_the_server_and_writes_a_report(tmp_path: Path) -> None:
    target = tmp_path / "project"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "core.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    done = pcoord("demo", "--target", str(target), env={"PCOORD_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout
    took = re.search(r"SUCCESS in ([0-9.]+) s", done.stdout)
    assert took is not None and float(took.group(1)) > 0  # the session's own time, not a blank zero
    report = Path(done.stdout.split("report: ")[1].split()[0])
    text = report.read_text()
    assert str(target) in text
    assert "Python" in text
    timeline = Path(done.stdout.split("timeline: ")[1].split()[0])
    assert 'id="timeline"' in timeline.read_text()


def test_status_and_metrics_read_what_a_run_left_in_the_state_directory(tmp_path: Path, agents: AgentFactory) -> None:
    env = environment(tmp_path, agents)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "two steps",
        "subtasks": [{"id": "first", "description": "x", "agent_type": "echo"},
                     {"id": "second", "description": "y", "agent_type": "echo", "dependencies": ["first"]}],
    }))
    session_id = json.loads(pcoord("run", str(plan), "--json", env=env).stdout)["session_id"]

    status = json.loads(pcoord("status", session_id, "--json", env=env).stdout)
    assert (status["status"], status["completed"], status["total_tasks"]) == ("SUCCESS", 2, 2)
    table = pcoord("status", session_id, env=env)
    assert table.returncode == 0 and "first" in table.stdout and "second" in table.stdout
    listing = json.loads(pcoord("status", "--json", env=env).stdout)
    assert listing[0]["session_id"] == session_id
    metrics = json.loads(pcoord("metrics", "--json", env=env).stdout)
    assert metrics["agents"]["echo"]["runs"] == 2
    assert "agents (last 1,000 runs)" in pcoord("metrics", env=env).stdout
    unknown = pcoord("status", "nope", env=env)
    assert unknown.returncode == 1 and "unknown session 'nope'" in unknown.stderr


def test_watch_follows_a_session_that_runs_in_another_process(tmp_path: Path, agents: AgentFactory) -> None:
    from parallel_coordinator.state.store import Store

    fifo, plan = hanging_plan(tmp_path, agents)
    env = {**os.environ, **environment(tmp_path, agents)}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "run", str(plan)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    ) as run:
        json.loads(fifo.read_text())  # the agent is running
        store = Store(tmp_path / "state" / "state.db")
        ((session_id, status, _, _),) = store.recent_sessions()
        store.close()
        assert status == "RUNNING"
        with subprocess.Popen(
            [sys.executable, "-m", "parallel_coordinator", "watch", session_id],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ) as watch:
            assert watch.stderr is not None
            # Piped, watch prints a line per change: the first one shows it read the shared state.
            assert watch.stderr.readline().strip() == "RUNNING 0/1 done, 1 running: hang h"
            run.send_signal(signal.SIGINT)
            stdout, _ = watch.communicate(timeout=60)
        assert run.wait(timeout=60) == 130
    assert watch.returncode == 1
    assert "CANCELLED" in stdout


def test_plan_checks_a_plan_file_and_prints_one_that_run_accepts(tmp_path: Path, agents: AgentFactory) -> None:
    env = environment(tmp_path, agents)
    source = tmp_path / "draft.yaml"
    source.write_text(yaml.safe_dump({
        "task_description": "three steps", "strategy": "pipeline",
        "subtasks": [{"id": s, "description": f"step {s}", "agent_type": "echo"} for s in ("a", "b", "c")],
    }))
    planned = pcoord("plan", str(source), env=env)
    assert planned.returncode == 0, planned.stderr
    document = yaml.safe_load(planned.stdout)
    assert [t["dependencies"] for t in document["subtasks"]] == [[], ["a"], ["b"]]
    checked = tmp_path / "checked.yaml"
    checked.write_text(planned.stdout)
    assert pcoord("run", str(checked), env=env).returncode == 0
    whole = pcoord("plan", "say hello to the echo agent", "--json", env={**env, "PATH": str(tmp_path)})
    assert json.loads(whole.stdout)["subtasks"][0]["agent_type"] in {"echo", "failer"}
    assert "no planner available" in whole.stderr


def test_serve_refuses_a_scheduler_without_the_dask_backend(tmp_path: Path, agents: AgentFactory) -> None:
    env = environment(tmp_path, agents)
    result = pcoord("serve", "--scheduler", "tcp://127.0.0.1:9", env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "a Dask scheduler ('tcp://127.0.0.1:9') is set, but the backend is 'local': add --backend dask" in (
        " ".join(result.stderr.split())
    )
    assert result.stdout == ""
