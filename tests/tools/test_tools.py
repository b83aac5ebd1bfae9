"""The five tools through a real in-memory MCP client: schemas, results, errors, cancellation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory, alive, wait_until
from tests.engine.test_coordinator import HANG_WITH_CHILD

pytestmark = pytest.mark.anyio

TOOLS = {
    "coordinate_task", "get_progress_status", "cancel_execution", "get_performance_metrics", "list_agents",
    "list_sessions", "get_session_view",
}


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


DIAMOND = [
    {"id": "a", "description": "root", "agent_type": "echo"},
    {"id": "b", "description": "left", "agent_type": "echo", "dependencies": ["a"]},
    {"id": "c", "description": "right", "agent_type": "echo", "dependencies": ["a"]},
    {"id": "d", "description": "join", "agent_type": "echo", "dependencies": ["b", "c"]},
]


async def test_the_server_lists_five_tools_with_schemas_and_descriptions(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 80
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None
    coordinate = tools["coordinate_task"]
    assert "subtasks" in coordinate.input_schema["properties"]
    assert "wait_seconds" in json.dumps(coordinate.input_schema)
    assert "get_progress_status" in (coordinate.description or "")


async def test_coordinate_task_runs_a_diamond_and_returns_every_result(client: Client) -> None:
    result = await call(client, "coordinate_task", task_description="diamond", subtasks=DIAMOND,
                        options={"wait_seconds": 60})
    assert result["status"] == "SUCCESS"
    by_id = {r["task_id"]: r for r in result["results"]}
    assert by_id["d"]["output"].strip() == "d done b<b done a<a done>> c<c done a<a done>>"
    assert all(r["status"] == "succeeded" and r["attempts"] == 1 and r["agent"] == "echo"
               for r in result["results"])
    assert result["execution_time_s"] > 0
    assert set(result["performance_metrics"]) >= {"avg_task_time_s", "throughput_per_min", "error_rate"}


async def test_a_finished_session_reports_its_results_in_progress_status(client: Client) -> None:
    started = await call(client, "coordinate_task", task_description="diamond", subtasks=DIAMOND,
                         options={"wait_seconds": 60})
    status = await call(client, "get_progress_status", session_id=started["session_id"])
    assert status["status"] == "SUCCESS"
    assert (status["total_tasks"], status["completed"], status["in_progress"], status["pending"]) == (4, 4, 0, 0)
    assert len(status["results"]) == 4
    assert status["estimated_completion"] is not None


async def test_without_waiting_the_call_returns_running_with_a_way_to_follow(
    client: Client, coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    started = await call(client, "coordinate_task", task_description="hang",
                         subtasks=[{"id": "h", "description": spec, "agent_type": "hang"}],
                         options={"wait_seconds": 0})
    assert started["status"] == "RUNNING"
    assert "get_progress_status" in started["next_step"]
    assert "over stdio" not in started["next_step"]  # in memory, the session outlives no client process
    session = coordinator.sessions[started["session_id"]]
    await wait_until(session, lambda: session.tasks["h"].progress is not None)

    status = await call(client, "get_progress_status", session_id=started["session_id"])
    assert status["status"] == "RUNNING" and status["in_progress"] == 1
    assert status["agents_active"][0]["task_id"] == "h"
    assert status["agents_active"][0]["progress"] == 10
    assert status["agents_active"][0]["message"] == "hanging"
    pids = json.loads((tmp_path / "h.pids").read_text())

    cancelled = await call(client, "cancel_execution", session_id=started["session_id"])
    assert cancelled == {"session_id": started["session_id"], "status": "CANCELLED",
                         "cancelled_tasks": 1, "killed_processes": 2, "note": None}
    assert alive(pids) == []


@pytest.mark.parametrize(
    ("subtasks", "expected"),
    [
        ([{"id": "a", "description": "x", "agent_type": "ecoh"}],
         "unknown agent 'ecoh' in task 'a'; did you mean 'echo'?"),
        ([{"id": "a", "description": "x", "agent_type": "echo", "dependencies": ["nope"]}], "'nope'"),
        ([{"id": "a", "description": "x", "agent_type": "echo"}] * 2, "duplicate task id 'a'"),
        ([{"id": "a", "description": "x", "agent_type": "echo", "dependencies": ["a"]}], "'a' depends on itself"),
        ([{"id": "a", "description": "x", "agent_type": "echo", "dependencies": ["b"]},
          {"id": "b", "description": "x", "agent_type": "echo", "dependencies": ["a"]}], "cycle"),
        ([], "no subtasks"),
        ([{"id": "a\u0000b", "description": "x"}], "control characters"),
        ([{"id": "a", "description": "x", "priority": 9}], "priority"),
    ],
)
async def test_bad_input_is_a_tool_error_naming_the_value_and_the_server_keeps_serving(
    client: Client, subtasks: list[dict[str, Any]], expected: str
) -> None:
    text = await call_error(client, "coordinate_task", task_description="bad", subtasks=subtasks)
    assert expected in text
    result = await call(client, "coordinate_task", task_description="fine",
                        subtasks=[{"id": "ok", "description": "x", "agent_type": "echo"}],
                        options={"wait_seconds": 60})
    assert result["status"] == "SUCCESS"


async def test_an_unknown_session_is_a_tool_error_for_status_and_cancel(client: Client) -> None:
    for tool in ("get_progress_status", "cancel_execution"):
        assert "unknown session 'missing'" in await call_error(client, tool, session_id="missing")


async def test_a_misspelt_argument_is_a_tool_error_naming_it_and_nothing_runs(
    client: Client, coordinator: Coordinator
) -> None:
    text = await call_error(client, "coordinate_task", task_description="misspelt plan",
                            subtask=[{"id": "a", "description": "x", "agent_type": "echo"}])
    assert "unknown argument 'subtask'; did you mean 'subtasks'?" in text
    assert "coordinate_task takes task_description, subtasks, strategy, options" in text
    assert coordinator.sessions == {}
    assert (await call(client, "list_sessions"))["sessions"] == []


# The smallest valid call of each tool: an extra argument is the only thing wrong with it.
VALID_CALLS: dict[str, dict[str, Any]] = {
    "coordinate_task": {"task_description": "x", "options": {"dry_run": True}},
    "get_progress_status": {"session_id": "missing"},
    "cancel_execution": {"session_id": "missing"},
    "get_performance_metrics": {},
    "list_agents": {},
    "list_sessions": {},
    "get_session_view": {"session_id": "missing"},
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
async def test_every_tool_refuses_an_argument_it_does_not_take_and_says_so_in_its_schema(
    client: Client, tool: str
) -> None:
    listed = {t.name: t for t in (await client.list_tools()).tools}[tool]
    assert listed.input_schema["additionalProperties"] is False
    text = await call_error(client, tool, **VALID_CALLS[tool], verbose=True)
    assert "unknown argument 'verbose'" in text


async def test_many_unknown_arguments_are_named_a_few_at_a_time_and_huge_names_shortened(client: Client) -> None:
    stray = {"sesion_id": 1, "x" * 100_000: 2, **{f"extra{i}": i for i in range(1_000)}}
    result = await client.call_tool("get_progress_status", {"session_id": "s", **stray})
    assert result.is_error
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert "unknown arguments 'sesion_id' (did you mean 'session_id'?), 'xxxx" in text
    assert "(100,000 characters)" in text and "..." in text
    assert len(text) < 1_000


async def test_a_huge_session_id_is_refused_by_length_and_never_echoed_whole(client: Client) -> None:
    for tool in ("get_progress_status", "cancel_execution"):
        text = await call_error(client, tool, session_id="s" * 100_000)
        assert "session_id" in text and "200 characters" in text
        assert len(text) < 1_000
    text = await call_error(client, "coordinate_task", task_description="x", options={"resume_session": "s" * 100_000})
    assert "resume_session" in text and "200 characters" in text
    assert len(text) < 1_000
    text = await call_error(client, "get_progress_status", session_id="s" * 200)
    assert f"unknown session {'s' * 40!r}... (200 characters)" in text


async def test_a_bad_memory_size_names_the_value(client: Client) -> None:
    text = await call_error(client, "coordinate_task", task_description="x",
                            subtasks=[{"id": "a", "description": "x", "agent_type": "echo"}],
                            options={"max_memory_per_agent": "lots"})
    assert "'lots'" in text
    for huge in ("lots" * 25_000, "9" * 100_000 + "MB"):
        text = await call_error(client, "coordinate_task", task_description="x", options={"max_memory_per_agent": huge})
        assert " characters)" in text and len(text) < 1_000


async def test_dry_run_returns_the_plan_and_runs_nothing(client: Client, coordinator: Coordinator) -> None:
    result = await call(client, "coordinate_task", task_description="diamond", subtasks=DIAMOND,
                        options={"dry_run": True})
    assert [t["task_id"] for t in result["plan"]] == ["a", "b", "c", "d"]
    assert result["plan"][3]["dependencies"] == ["b", "c"]
    assert coordinator.sessions == {}


async def test_pipeline_strategy_chains_subtasks_in_order(client: Client) -> None:
    result = await call(client, "coordinate_task", task_description="chain", strategy="pipeline",
                        subtasks=[{"id": s, "description": s, "agent_type": "echo"} for s in ("one", "two", "three")],
                        options={"wait_seconds": 60})
    by_id = {r["task_id"]: r for r in result["results"]}
    assert by_id["three"]["output"].strip() == "three done two<two done one<one done>>"


async def test_performance_metrics_reflect_recorded_runs(client: Client) -> None:
    await call(client, "coordinate_task", task_description="mixed",
               subtasks=[{"id": "ok", "description": "x", "agent_type": "echo"},
                         {"id": "bad", "description": "x", "agent_type": "failer"}],
               options={"wait_seconds": 60, "retry_attempts": 1})
    metrics = await call(client, "get_performance_metrics")
    health = metrics["system_health"]
    assert 0 <= health["cpu_percent"] <= 100 * 64
    assert health["memory_used_mb"] > 0 and 0 < health["memory_percent"] <= 100
    assert health["active_agents"] == 0 and health["queue_size"] == 0
    assert metrics["performance"]["success_rate"] == 0.5
    assert metrics["agents"]["echo"]["runs"] == 1 and metrics["agents"]["echo"]["failures"] == 0
    assert metrics["agents"]["failer"]["failures"] == 1


async def test_list_agents_shows_agents_and_diagnostics(client: Client, agents: AgentFactory) -> None:
    (agents.root / "nameless.md").write_text("---\ndescription: no name here\n---\nbody\n")
    listing = await call(client, "list_agents")
    names = {a["name"]: a for a in listing["agents"]}
    assert names["echo"]["runner"] == "command" and names["echo"]["source"] == "env"
    assert any("nameless.md" in d["path"] for d in listing["diagnostics"])


async def test_an_agent_file_that_could_not_run_is_not_offered_and_a_plan_naming_it_is_refused(
    client: Client, agents: AgentFactory
) -> None:
    (agents.root / "coder.md").write_text("---\nname: coder\nrunner: aider\n---\nWrite code.\n")
    (agents.root / "nul.md").write_text(
        '---\nname: nul\nrunner: command\ncommand: [python3, "-c", "print(1)\\0"]\n---\nx\n'
    )
    listing = await call(client, "list_agents")
    assert {a["name"] for a in listing["agents"]} == {"echo", "failer"}
    problems = {Path(d["path"]).name: d["problem"] for d in listing["diagnostics"]}
    assert "unknown runner 'aider'" in problems["coder.md"]
    assert "command[2] ('print(1)\\x00') holds a NUL byte" in problems["nul.md"]

    for name in ("coder", "nul"):
        error = await call_error(client, "coordinate_task", task_description="x",
                                 subtasks=[{"id": "a", "description": "x", "agent_type": name}])
        assert f"unknown agent {name!r} in task 'a'" in error


async def test_a_long_output_is_cut_in_the_tool_result(client: Client, agents: AgentFactory) -> None:
    agents.script("verbose", "print('x' * 100_000)")
    result = await call(client, "coordinate_task", task_description="long",
                        subtasks=[{"id": "v", "description": "x", "agent_type": "verbose"}],
                        options={"wait_seconds": 60})
    task = result["results"][0]
    assert task["output_truncated"] is True
    assert task["output_chars"] == 100_001
    assert len(task["output"]) < 10_000


async def test_the_parallelize_prompt_teaches_the_graph_and_lists_the_agents(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert "parallelize" in prompts
    prompt = await client.get_prompt("parallelize", {"task": "review the payments service"})
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "review the payments service" in text
    assert "- echo: test agent echo" in text and "- failer:" in text
    assert "dry_run" in text


MERGER = """
    import json, sys
    request = json.load(sys.stdin)
    print("merged: " + " + ".join(f"{k}={v.strip()}" for k, v in sorted(request["context"].items())))
"""


async def test_a_synthesizer_runs_last_with_every_result_in_its_context(client: Client, agents: AgentFactory) -> None:
    agents.script("merger", MERGER)
    result = await call(client, "coordinate_task", task_description="merge", subtasks=[
        {"id": "a", "description": "x", "agent_type": "echo"},
        {"id": "b", "description": "x", "agent_type": "failer"},
        {"id": "c", "description": "y", "agent_type": "echo"},
    ], options={"wait_seconds": 60, "retry_attempts": 1, "synthesizer": "merger"})
    assert result["status"] == "PARTIAL"
    assert result["synthesis"].strip() == "merged: a=a done + c=c done"
    assert "synthesized by merger" in result["notes"]


async def test_without_a_synthesizer_the_answer_is_a_summary_of_every_task(client: Client) -> None:
    result = await call(client, "coordinate_task", task_description="sum", subtasks=[
        {"id": "a", "description": "x", "agent_type": "echo"},
        {"id": "b", "description": "x", "agent_type": "failer"},
    ], options={"wait_seconds": 60, "retry_attempts": 1})
    lines = result["synthesis"].splitlines()
    assert lines[0] == "PARTIAL: 1 of 2 tasks succeeded."
    assert lines[1].startswith("- a (echo, succeeded): a done [whole output: pcoord://sessions/")
    assert lines[2].startswith("- b (failer, failed): error: exited with status 3")


async def test_agent_files_are_read_again_when_they_change_without_a_restart(
    client: Client, agents: AgentFactory
) -> None:
    before = {a["name"] for a in (await call(client, "list_agents"))["agents"]}
    agents.script("newcomer", "print('new here')", description="Arrived while the server ran")
    after = {a["name"]: a for a in (await call(client, "list_agents"))["agents"]}
    assert "newcomer" not in before and after["newcomer"]["description"] == "Arrived while the server ran"
    result = await call(client, "coordinate_task", task_description="x",
                        subtasks=[{"id": "n", "description": "x", "agent_type": "newcomer"}],
                        options={"wait_seconds": 60})
    assert result["results"][0]["output"].strip() == "new here"


async def test_a_large_session_lists_its_failures_first_and_says_how_many_results_it_left_out(
    client: Client, agents: AgentFactory
) -> None:
    (agents.root / "noop.md").write_text("---\nname: noop\nrunner: command\ncommand: [/bin/true]\n---\nx\n")
    subtasks = [{"id": f"t{i:03}", "description": "x", "agent_type": "noop"} for i in range(203)]
    subtasks += [{"id": f"bad{i}", "description": "x", "agent_type": "failer"} for i in range(3)]
    started = await call(client, "coordinate_task", task_description="many", subtasks=subtasks,
                         options={"wait_seconds": 0, "retry_attempts": 1, "max_agents": 64})
    assert started["status"] == "RUNNING"
    assert started["results"] == []  # while it runs, the counts in progress say how far along it is
    ended = await call(client, "get_progress_status", session_id=started["session_id"], wait_seconds=120)
    assert ended["status"] == "PARTIAL"
    assert len(ended["results"]) == 200 and ended["results_omitted"] == 6
    listed = {result["task_id"] for result in ended["results"]}
    assert {"bad0", "bad1", "bad2"} <= listed
    assert [r["task_id"] for r in ended["results"]] == sorted(listed, key=lambda t: (t.startswith("bad"), t))


async def test_a_working_directory_with_a_nul_byte_is_a_tool_error_not_a_lost_worker(client: Client) -> None:
    text = await call_error(client, "coordinate_task", task_description="bad",
                            subtasks=[{"id": "a", "description": "x", "agent_type": "echo"}],
                            options={"working_directory": "/tmp/a\u0000b"})
    assert "working_directory" in text and "NUL byte" in text
