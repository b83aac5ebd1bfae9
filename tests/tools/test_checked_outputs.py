"""Outputs checked against a subtask's output_schema, and runs that claim work they did not do, through a real
MCP client: command agents (answers from a list, at the outside edge) and the fake `claude`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory
from tests.tools.answering import answering_agent, requests_seen

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
VERDICT = {
    "type": "object",
    "properties": {"verdict": {"enum": ["pass", "fail"]}, "issues": {"type": "array", "items": {"type": "string"}}},
    "required": ["verdict"],
}
FIXER = """---
name: fixer
description: Fixes bugs
tools: Read, Edit
model: sonnet
---
You fix bugs.
"""


async def coordinate(coordinator: Coordinator, subtasks: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", {
            "task_description": "checked", "subtasks": subtasks, "options": {"wait_seconds": 60, **options},
        })
    assert answer.structured_content is not None, answer.content
    return answer.structured_content


def result_of(content: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(r for r in content["results"] if r["task_id"] == task_id)


async def test_an_output_that_does_not_match_is_retried_with_the_error_and_a_valid_one_is_handed_on_as_json(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    log = answering_agent(agents, "judge", ['{"verdict": "maybe"}', '{"verdict": "pass", "issues": []}'])
    content = await coordinate(coordinator, [
        {"id": "check", "description": "Check the module", "agent_type": "judge", "output_schema": VERDICT},
        {"id": "after", "description": "use it", "agent_type": "echo", "dependencies": ["check"]},
    ])

    assert content["status"] == "SUCCESS", content
    check = result_of(content, "check")
    assert check["output_json"] == {"verdict": "pass", "issues": []}
    assert check["attempts"] == 2
    first = check["attempt_log"][0]
    assert first["outcome"] == "rejected"
    assert first["error"].startswith("output_schema: at verdict: 'maybe' is not one of")
    # A command agent cannot hold itself to a schema: every attempt is told it; the retry also why it was refused.
    seen = requests_seen(log)
    assert all("## Answer format" in r["description"] and '"verdict"' in r["description"] for r in seen)
    assert "Your previous attempt was not accepted" not in seen[0]["description"]
    assert "Your previous attempt was not accepted" in seen[1]["description"]
    assert "'maybe' is not one of" in seen[1]["description"]
    # The dependent got the validated value as JSON.
    assert '"verdict": "pass"' in result_of(content, "after")["output"]


async def test_an_output_that_never_matches_fails_the_task_naming_the_mismatch(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    answering_agent(agents, "judge", ["not json", "still not json"])
    content = await coordinate(coordinator, [
        {"id": "check", "description": "Check it", "agent_type": "judge", "output_schema": VERDICT,
         "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}},
    ])
    check = result_of(content, "check")
    assert content["status"] == "FAILED" and check["status"] == "failed"
    assert "output_schema: the output is not JSON" in check["error"]
    assert check["output_json"] is None


async def test_a_schema_that_is_not_one_is_refused_before_anything_runs(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", {
            "task_description": "x",
            "subtasks": [{"id": "a", "description": "x", "agent_type": "echo", "output_schema": {"type": "strin"}}],
        })
    assert answer.is_error
    assert "output_schema is not a valid JSON Schema" in answer.content[0].text  # type: ignore[union-attr]
    assert coordinator.sessions == {}


async def test_a_claude_run_gets_the_schema_as_json_schema_and_its_structured_output_is_kept(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "fixer.md").write_text(FIXER)
    answer = tmp_path / "answer.txt"
    answer.write_text('{"verdict": "fail", "issues": ["off by one"]}')
    record = tmp_path / "record.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", f"answer:{answer}")
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))
    content = await coordinate(coordinator, [
        {"id": "review", "description": "Review parse()", "agent_type": "fixer", "output_schema": VERDICT},
    ], approved=True)

    review = result_of(content, "review")
    assert review["status"] == "succeeded" and review["output_json"] == {"verdict": "fail", "issues": ["off by one"]}
    argv = json.loads(record.read_text())["argv"]
    assert json.loads(argv[argv.index("--json-schema") + 1]) == VERDICT
    assert "## Answer format" not in json.loads(record.read_text())["stdin"]  # the CLI enforces it itself


async def test_a_claude_run_that_claims_a_fix_with_no_tool_call_is_flagged_and_kept(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "fixer.md").write_text(FIXER)
    said = tmp_path / "said.txt"
    said.write_text("Done! I fixed the off-by-one error in parse().")
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", f"say:{said}")
    content = await coordinate(coordinator, [
        {"id": "fix", "description": "Fix the off-by-one error in parse()", "agent_type": "fixer"},
    ], approved=True)

    fix = result_of(content, "fix")
    assert fix["status"] == "succeeded"
    assert [flag.split(":")[0] for flag in fix["flags"]] == ["no_tool_use"]
    assert any("task 'fix' is flagged: no_tool_use" in note for note in content["notes"])


async def test_with_on_flagged_fail_a_claim_without_work_is_retried_until_a_run_does_the_work(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "fixer.md").write_text(FIXER)
    said = tmp_path / "said.txt"
    said.write_text("Done! Fixed.")
    sequence = tmp_path / "sequence"
    sequence.write_text(f"say:{said}\nsuccess\n")  # the second run makes a tool call
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
    content = await coordinate(coordinator, [
        {"id": "fix", "description": "Fix the off-by-one error in parse()", "agent_type": "fixer",
         "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}},
    ], approved=True, on_flagged="fail")

    fix = result_of(content, "fix")
    assert fix["status"] == "succeeded" and fix["flags"] == []
    assert [a["outcome"] for a in fix["attempt_log"]] == ["rejected", "exited"]
    assert fix["attempt_log"][0]["error"].startswith("flagged (options.on_flagged is 'fail'): no_tool_use")


async def test_a_question_is_not_flagged_for_answering_without_tools(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "fixer.md").write_text(FIXER)
    said = tmp_path / "said.txt"
    said.write_text("parse() reads one line at a time.")
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", f"say:{said}")
    content = await coordinate(coordinator, [
        {"id": "ask", "description": "Explain what parse() does", "agent_type": "fixer"},
    ], approved=True)
    assert result_of(content, "ask")["flags"] == []
