"""`pcoord run` shows what the agents produced: first lines, where the whole is, the synthesis, the report."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from parallel_coordinator.state.names import safe_name
from tests.cli.test_cli import environment, pcoord
from tests.conftest import AgentFactory

LINES = """
    import json, sys
    request = json.load(sys.stdin)
    for n in range(1, 31):
        print(f"{request['task_id']} line {n} [bold]not markup[/bold]")
"""


def two_tasks(tmp_path: Path, agents: AgentFactory) -> Path:
    agents.script("lines", LINES)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "two outputs",
        "subtasks": [{"id": "short one", "description": "x", "agent_type": "echo"},
                     {"id": "long/../one", "description": "y", "agent_type": "lines"}],
    }))
    return plan


def test_run_shows_each_tasks_first_lines_the_synthesis_and_the_report_command(
    tmp_path: Path, agents: AgentFactory
) -> None:
    done = pcoord("run", str(two_tasks(tmp_path, agents)), env={**environment(tmp_path, agents), "COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "short one done" in out
    assert "long/../one line 5 [bold]not markup[/bold]" in out  # agent text printed as it is
    assert "long/../one line 6 " not in out  # only the first lines on the terminal
    session_id = out.split("session ")[1].split()[0]
    assert f"pcoord://sessions/{session_id}/tasks/long%2F..%2Fone" in out  # where the whole is
    assert "synthesis" in out
    assert f"report: pcoord report {session_id}" in out


def test_run_output_writes_every_tasks_whole_output_to_a_safely_named_file(
    tmp_path: Path, agents: AgentFactory
) -> None:
    target = tmp_path / "results" / "here"
    done = pcoord("run", str(two_tasks(tmp_path, agents)), "--output", str(target), "--json",
                  env=environment(tmp_path, agents))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    files = {p.name: p.read_text() for p in target.iterdir()}  # '../' in an id stays inside DIR
    long_name = f"{safe_name('long/../one')}.txt"
    assert sorted(files) == sorted([f"{safe_name('short one')}.txt", long_name, "_synthesis.txt"])
    assert files[f"{safe_name('short one')}.txt"].strip() == "short one done"
    assert files[long_name].splitlines()[-1] == "long/../one line 30 [bold]not markup[/bold]"
    assert files["_synthesis.txt"] == result["synthesis"]

    printed = pcoord("run", str(two_tasks(tmp_path, agents)), "--output", str(target),
                     env={**environment(tmp_path, agents), "COLUMNS": "300"})
    assert str(target / long_name) in printed.stdout


def test_run_refuses_an_output_that_is_a_file_and_runs_nothing(tmp_path: Path, agents: AgentFactory) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    done = pcoord("run", str(two_tasks(tmp_path, agents)), "--output", str(taken), env=environment(tmp_path, agents))
    assert done.returncode == 1
    assert f"--output '{taken}' exists and is not a directory" in " ".join(done.stderr.split())
    assert taken.read_text() == "mine\n"
    assert not (tmp_path / "state" / "state.db").exists()


def test_run_dash_reads_the_plan_from_stdin(tmp_path: Path, agents: AgentFactory) -> None:
    plan = {"task_description": "from a pipe", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}]}
    done = pcoord("run", "-", "--json", env=environment(tmp_path, agents), input=json.dumps(plan))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["output"].strip() == "a done"
    bad = pcoord("run", "-", env=environment(tmp_path, agents), input="task_description: [unclosed\n")
    assert bad.returncode == 1
    assert "the plan on stdin is not valid YAML" in bad.stderr


def test_run_into_a_pipe_prints_a_plain_line_per_task_start_and_end_not_a_bar(
    tmp_path: Path, agents: AgentFactory
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "two steps",
        "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"},
                     {"id": "b", "description": "y", "agent_type": "failer", "dependencies": ["a"]}],
        "options": {"retry_attempts": 1},
    }))
    done = pcoord("run", str(plan), env=environment(tmp_path, agents))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "━" not in done.stderr and "session " not in done.stderr  # no rich bar, no header
    assert [line.split(" in ")[0] for line in lines if line.startswith("succeeded")] == ["succeeded a (echo)"]
    assert any(line.startswith("failed b (failer) in ") and ": exited with status 3" in line for line in lines)
    assert lines.index("started b (failer)") > lines.index(next(x for x in lines if x.startswith("succeeded a")))


def test_a_bad_plan_file_is_told_in_plain_words_naming_each_key(tmp_path: Path, agents: AgentFactory) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("task_descripton: x\nsubtasks: [{id: a, description: x, dependencies: a}]\n")
    done = pcoord("run", str(plan), env={**environment(tmp_path, agents), "COLUMNS": "300"})
    assert done.returncode == 1
    assert "task_description: required, and missing" in done.stderr
    assert "task_descripton: unknown key (a plan file's keys are task_description, subtasks" in done.stderr
    assert "subtasks[0].dependencies: input should be a valid list (got 'a')" in done.stderr
    assert "pydantic" not in done.stderr and "errors.pydantic.dev" not in done.stderr


def test_help_explains_every_flag_and_the_plan_files_format(tmp_path: Path, agents: AgentFactory) -> None:
    serve = pcoord("serve", "--help", env={**environment(tmp_path, agents), "COLUMNS": "300"}).stdout
    assert "stdio (default: a client starts the server) or http" in serve
    assert "HOST           with --transport http: the address to bind (default 127.0.0.1)" in serve
    assert "PORT           with --transport http: the port (default 8765)" in serve
    run = pcoord("run", "--help", env={**environment(tmp_path, agents), "COLUMNS": "300"}).stdout
    assert "task_description:" in run and "agent_type:" in run and "dependencies:" in run
    assert "- to read the plan" in run


def test_ids_and_errors_that_look_like_rich_markup_are_printed_as_they_are(
    tmp_path: Path, agents: AgentFactory
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "[bold]markup[/b] in the [/] description",
        "subtasks": [{"id": "a[/b]", "description": "x", "agent_type": "echo"},
                     {"id": "[red]broken[/red]", "description": "y", "agent_type": "failer"}],
    }))
    env = {**environment(tmp_path, agents), "COLUMNS": "300"}
    done = pcoord("run", str(plan), env=env)
    assert done.returncode == 1, done.stderr  # PARTIAL: one task failed, and nothing crashed
    assert "Traceback" not in done.stderr
    assert "a[/b] (echo)" in done.stdout and "[red]broken[/red] (failer)" in done.stdout
    session_id = done.stdout.split("session ")[1].split()[0]
    status = pcoord("status", session_id, env=env)
    assert status.returncode == 0 and "a[/b]" in status.stdout and "[red]broken[/red]" in status.stdout
    listed = pcoord("status", env=env)
    assert listed.returncode == 0 and "[bold]markup[/b] in the [/] description" in listed.stdout


def test_an_error_naming_text_that_looks_like_rich_markup_is_printed_as_it_is(
    tmp_path: Path, agents: AgentFactory
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "x", "subtasks": [{"id": "a", "description": "x", "agent_type": "no[/such]"}],
    }))
    done = pcoord("run", str(plan), env={**environment(tmp_path, agents), "COLUMNS": "300"})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "error: unknown agent 'no[/such]'" in done.stderr


def test_a_serve_host_that_looks_like_rich_markup_is_named_in_the_error_as_it_is(
    tmp_path: Path, agents: AgentFactory
) -> None:
    done = pcoord("serve", "--transport", "http", "--host", "no[/such]", env=environment(tmp_path, agents))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "error: 'no[/such]' is not a loopback address" in done.stderr


def test_metrics_and_config_show_names_and_paths_that_look_like_rich_markup_as_they_are(
    tmp_path: Path, agents: AgentFactory
) -> None:
    failer = (agents.root / "failer.md").read_text()
    (agents.root / "marked.md").write_text(failer.replace("name: failer", 'name: "x[/y]"', 1))
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"task_description": "fails", "subtasks": [
        {"id": f"t{n}", "description": "x", "agent_type": "x[/y]"} for n in range(3)
    ]}))
    env = {**environment(tmp_path, agents), "COLUMNS": "300", "PCOORD_STATE_DIR": str(tmp_path / "state[/z]")}
    assert pcoord("run", str(plan), env=env).returncode == 1
    metrics = pcoord("metrics", env=env)
    assert metrics.returncode == 0, metrics.stderr
    assert "alert: agent 'x[/y]' failed its last 3 runs" in metrics.stdout
    config = pcoord("config", env=env)
    assert config.returncode == 0, config.stderr
    assert "state[/z]" in config.stdout
