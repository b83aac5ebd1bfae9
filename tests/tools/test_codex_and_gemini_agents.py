"""Codex and Gemini agents through a real in-memory MCP client, against the fake `codex` and `gemini`:
they run and report tokens, a missing login fails once with the way to log in, a rate limit backs off,
and a rate-limited claude agent falls back to a codex agent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

FAKES = Path(__file__).resolve().parents[1] / "fakes"
CODER = """---
name: coder
description: Writes small, tested changes
runner: codex
model: gpt-6.1-sol
tools: Read, Edit, Bash
---
You write small, tested changes.
"""
RESEARCHER = """---
name: researcher
description: Researches a question and answers in one paragraph
runner: gemini
model: gemini-2.5-flash
tools: Read, Grep
---
You research a question and answer in one paragraph.
"""
REVIEWER = """---
name: reviewer
description: Reviews code for bugs
model: sonnet
fallback_agents: [coder]
---
You are a careful code reviewer.
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One rate-limited retry per agent before its fallbacks: enough to see the back-off, quick to fall back.
    return dataclasses.replace(settings, max_rate_limit_retries=1)


@pytest.fixture
def clis(agents: AgentFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in (("coder", CODER), ("researcher", RESEARCHER), ("reviewer", REVIEWER)):
        (agents.root / f"{name}.md").write_text(text)
    for tool in ("claude", "codex", "gemini"):
        monkeypatch.setenv(f"PCOORD_{tool.upper()}_BIN", str(FAKES / tool))
    # Each CLI logs in with its own variables; none may see another vendor's.
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, f"test-{name.lower()}")


@pytest.fixture
async def client(coordinator: Coordinator, clis: None) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


async def coordinate(client: Client, *subtasks: dict[str, Any], **options: Any) -> dict[str, Any]:
    result = await client.call_tool("coordinate_task", {
        "task_description": "Improve the project", "subtasks": list(subtasks),
        "options": {"wait_seconds": 60, "retry_attempts": 3, **options},
    })
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def by_task(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in answer["results"]}


async def test_a_codex_and_a_gemini_agent_run_on_a_dependencys_output_and_report_their_tokens(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CODEX_RECORD", str(tmp_path / "codex.json"))
    monkeypatch.setenv("FAKE_GEMINI_RECORD", str(tmp_path / "gemini.json"))

    answer = await coordinate(
        client,
        {"id": "find", "description": "list the files", "agent_type": "echo"},
        {"id": "code", "description": "Add the missing test", "agent_type": "coder", "dependencies": ["find"]},
        {"id": "ask", "description": "Which test framework fits?", "agent_type": "researcher",
         "dependencies": ["find"]},
    )

    assert answer["status"] == "SUCCESS", answer["error_summary"]
    results = by_task(answer)
    assert results["code"]["output"].startswith("fake codex done: Add the missing test")
    assert (results["code"]["input_tokens"], results["code"]["output_tokens"]) == (1000, 30)
    assert results["ask"]["output"].startswith("fake gemini done: You research a question")
    assert (results["ask"]["input_tokens"], results["ask"]["output_tokens"]) == (900, 40)
    codex, gemini = (json.loads((tmp_path / f"{cli}.json").read_text()) for cli in ("codex", "gemini"))
    assert "find done" in codex["stdin"] and "find done" in gemini["stdin"]
    assert codex["argv"][codex["argv"].index("-s") + 1] == "workspace-write"
    assert gemini["argv"][gemini["argv"].index("--approval-mode") + 1] == "default"
    assert "OPENAI_API_KEY" in codex["env_names"]
    assert not {"GEMINI_API_KEY", "ANTHROPIC_API_KEY"} & set(codex["env_names"])
    assert "GEMINI_API_KEY" in gemini["env_names"]
    assert not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"} & set(gemini["env_names"])


@pytest.mark.parametrize(("agent", "cli", "hint"), [("coder", "CODEX", "codex login"),
                                                    ("researcher", "GEMINI", "set GEMINI_API_KEY")])
async def test_a_logged_out_agent_fails_once_not_retried_naming_how_to_log_in(
    client: Client, monkeypatch: pytest.MonkeyPatch, agent: str, cli: str, hint: str
) -> None:
    monkeypatch.setenv(f"FAKE_{cli}_SCENARIO", "logged_out")

    answer = await coordinate(client, {"id": "t", "description": "do it", "agent_type": agent})

    [result] = answer["results"]
    assert answer["status"] == "FAILED"
    assert result["attempts"] == 1
    assert hint in (result["error"] or "")


async def test_a_rate_limited_codex_run_backs_off_and_then_succeeds_without_using_an_attempt(
    client: Client, coordinator: Coordinator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequence = tmp_path / "sequence"
    sequence.write_text("rate_limit\nsuccess\n")
    monkeypatch.setenv("FAKE_CODEX_SEQUENCE", str(sequence))

    answer = await coordinate(client, {"id": "t", "description": "do it", "agent_type": "coder",
                                       "retry_policy": {"max_attempts": 1}})

    [result] = answer["results"]
    assert answer["status"] == "SUCCESS", answer["error_summary"]
    assert [a["outcome"] for a in result["attempt_log"]] == ["rate_limited", "exited"]
    assert coordinator.throttles["codex"].rate_limits == 1


async def test_a_rate_limited_claude_agent_falls_back_to_a_codex_agent_and_the_session_succeeds(
    client: Client, coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", "rate_limit")
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "0")
    # An API key's limit asking for a short wait (the default scenario's subscription limit resets in an hour).
    monkeypatch.setenv("FAKE_CLAUDE_RETRY_AFTER_MS", "200")

    answer = await coordinate(client, {"id": "t", "description": "Review the parser", "agent_type": "reviewer",
                                       "retry_policy": {"max_attempts": 1}})

    [result] = answer["results"]
    assert answer["status"] == "SUCCESS", answer["error_summary"]
    assert result["agent"] == "coder"
    assert result["output"].startswith("fake codex done: Review the parser")
    assert [(a["agent"], a["outcome"]) for a in result["attempt_log"]] == [
        ("reviewer", "rate_limited"), ("reviewer", "rate_limited"), ("coder", "exited"),
    ]
    assert coordinator.throttles["claude"].rate_limits == 1  # the second moved the task on instead of waiting
    assert coordinator.throttles["codex"].rate_limits == 0


async def test_a_finished_run_whose_usage_passes_the_per_agent_token_budget_keeps_its_answer(client: Client) -> None:
    answer = await coordinate(client, {"id": "t", "description": "do it", "agent_type": "coder"},
                              token_budget_per_agent=100)

    [result] = answer["results"]
    assert answer["status"] == "SUCCESS", answer["error_summary"]
    assert result["output"].startswith("fake codex done:")
    assert answer["spent"]["tokens"] == 1030


async def test_list_agents_shows_each_agents_runner(client: Client) -> None:
    result = await client.call_tool("list_agents", {})
    assert result.structured_content is not None

    runners = {a["name"]: a["runner"] for a in result.structured_content["agents"]}
    assert runners == {"echo": "command", "failer": "command", "coder": "codex", "researcher": "gemini",
                       "reviewer": "claude"}
