"""ClaudeRunner: the argv and prompt it builds, and its reading of runs of the fake `claude`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, TaskRequest
from parallel_coordinator.runners.claude import (
    DEFAULT_MAX_TURNS,
    ClaudeRunner,
    asked_wait_s,
    build_prompt,
    find_claude,
)
from parallel_coordinator.runners.claude_stream import ClaudeStreamReader
from parallel_coordinator.runners.streams import Progress

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"


def make_agent(**fields: Any) -> AgentSpec:
    fields.setdefault("name", "doc-auditor")
    fields.setdefault("body", "You audit documentation.\nBe brief.")
    return AgentSpec(**fields)


def make_request(**fields: Any) -> TaskRequest:
    defaults: dict[str, Any] = {
        "session_id": "s1",
        "task_id": "t3",
        "description": "Summarise the findings.",
        "task_description": "Audit the project's documentation.",
        "context": {},
    }
    return TaskRequest(**{**defaults, **fields})


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def run(invocation: Invocation, cwd: Path, **env: str) -> tuple[AttemptOutcome, list[Progress]]:
    """Start the process as the supervisor would and read its streams with the runner's reader."""
    started = time.time()
    proc = subprocess.run(
        invocation.argv,
        input=invocation.stdin,
        capture_output=True,
        env={**os.environ, **invocation.env, **env},
        cwd=cwd,
        timeout=60,
        check=False,
    )
    reader = ClaudeStreamReader()
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    progress = [p for p in map(reader.on_stdout_line, stdout.splitlines()) if p is not None]
    progress += [p for p in map(reader.on_stderr_line, stderr.splitlines()) if p is not None]
    outcome = AttemptOutcome(
        reason="exited",
        exit_code=proc.returncode,
        stdout=stdout,
        stdout_bytes=len(proc.stdout),
        stderr_tail="\n".join(stderr.splitlines()[-20:]),
        final_event=reader.final_event(),
        started_at=started,
        finished_at=time.time(),
    )
    return outcome, progress


@pytest.fixture
def runner() -> ClaudeRunner:
    return ClaudeRunner(str(FAKE_CLAUDE))


# -- argv -------------------------------------------------------------------------------------


def test_argv_asks_for_a_headless_stream_json_run_with_the_body_as_appended_system_prompt(
    runner: ClaudeRunner,
) -> None:
    invocation = runner.invocation(make_agent(), make_request())

    assert invocation.argv[:5] == [str(FAKE_CLAUDE), "-p", "--output-format", "stream-json", "--verbose"]
    assert option(invocation.argv, "--append-system-prompt") == "You audit documentation.\nBe brief."
    assert invocation.stream == "claude"


def test_a_model_alias_is_passed_through(runner: ClaudeRunner) -> None:
    argv = runner.invocation(make_agent(model="haiku"), make_request()).argv

    assert option(argv, "--model") == "haiku"


@pytest.mark.parametrize("model", [None, "inherit", "Inherit"])
def test_no_model_flag_when_the_agent_inherits_the_model(runner: ClaudeRunner, model: str | None) -> None:
    argv = runner.invocation(make_agent(model=model), make_request()).argv

    assert "--model" not in argv


def test_the_agents_tools_are_offered_and_preapproved_as_comma_lists(runner: ClaudeRunner) -> None:
    agent = make_agent(tools=["Read", "Grep", "Bash(git log *)"], disallowed_tools=["Write", "Edit"])

    argv = runner.invocation(agent, make_request()).argv

    assert option(argv, "--tools") == "Read,Grep,Bash"
    assert option(argv, "--allowedTools") == "Read,Grep,Bash(git log *)"
    assert option(argv, "--disallowedTools") == "Write,Edit"


def test_an_agent_without_a_tools_list_gets_no_tool_flags(runner: ClaudeRunner) -> None:
    argv = runner.invocation(make_agent(tools=None), make_request()).argv

    assert not {"--tools", "--allowedTools", "--disallowedTools"} & set(argv)


def test_an_empty_tools_list_means_no_tools(runner: ClaudeRunner) -> None:
    argv = runner.invocation(make_agent(tools=[]), make_request()).argv

    assert option(argv, "--tools") == ""
    assert "--allowedTools" not in argv


def test_max_turns_has_a_default_a_constructor_setting_and_a_front_matter_override() -> None:
    default = ClaudeRunner(str(FAKE_CLAUDE)).invocation(make_agent(), make_request()).argv
    configured = ClaudeRunner(str(FAKE_CLAUDE), max_turns=7).invocation(make_agent(), make_request()).argv
    per_agent = ClaudeRunner(str(FAKE_CLAUDE), max_turns=7).invocation(
        make_agent(extra={"maxTurns": 3}), make_request()
    ).argv

    assert option(default, "--max-turns") == str(DEFAULT_MAX_TURNS)
    assert option(configured, "--max-turns") == "7"
    assert option(per_agent, "--max-turns") == "3"


def test_permission_mode_and_effort_come_from_the_front_matter(runner: ClaudeRunner) -> None:
    agent = make_agent(extra={"permissionMode": "acceptEdits", "effort": "high", "color": "blue"})

    argv = runner.invocation(agent, make_request()).argv

    assert option(argv, "--permission-mode") == "acceptEdits"
    assert option(argv, "--effort") == "high"
    assert "--permission-mode" not in runner.invocation(make_agent(), make_request()).argv


def test_an_agent_with_an_empty_body_gets_no_appended_system_prompt(runner: ClaudeRunner) -> None:
    argv = runner.invocation(make_agent(body="  \n"), make_request()).argv

    assert "--append-system-prompt" not in argv


# -- prompt -----------------------------------------------------------------------------------


def test_the_prompt_goes_on_stdin_with_each_dependency_output_under_its_task_id(runner: ClaudeRunner) -> None:
    request = make_request(context={"t1": "README is outdated.", "t2": "No CHANGELOG."})

    invocation = runner.invocation(make_agent(), request)
    prompt = invocation.stdin.decode()

    assert prompt.startswith("Summarise the findings.\n")
    assert "Audit the project's documentation." in prompt
    assert "### Output of task `t1`\n\nREADME is outdated." in prompt
    assert "### Output of task `t2`\n\nNo CHANGELOG." in prompt
    assert prompt.index("`t1`") < prompt.index("`t2`")
    assert not any("Summarise the findings." in arg for arg in invocation.argv)


def test_the_overall_task_is_not_repeated_when_it_is_the_subtask_itself() -> None:
    prompt = build_prompt(make_request(description="Do it.", task_description="Do it."))

    assert prompt == "Do it.\n"


def test_a_prompt_larger_than_one_argv_string_may_be_reaches_the_cli_intact(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    big = "x" * (300 * 1024)
    invocation = runner.invocation(make_agent(), make_request(context={"t1": big}))
    record = tmp_path / "record.json"

    outcome, _ = run(invocation, tmp_path, FAKE_CLAUDE_RECORD=str(record))

    recorded = json.loads(record.read_text())
    assert outcome.exit_code == 0
    assert recorded["argv"] == invocation.argv
    assert recorded["stdin"] == invocation.stdin.decode()
    assert big in recorded["stdin"]


# -- finding the executable -------------------------------------------------------------------


def test_pcoord_claude_bin_names_the_executable(tmp_path: Path) -> None:
    environ = {"PCOORD_CLAUDE_BIN": str(FAKE_CLAUDE), "PATH": str(tmp_path)}

    argv = ClaudeRunner(environ=environ).invocation(make_agent(), make_request()).argv

    assert argv[0] == str(FAKE_CLAUDE)


def test_claude_is_found_on_path(tmp_path: Path) -> None:
    (tmp_path / "claude").symlink_to(FAKE_CLAUDE)

    assert find_claude({"PATH": str(tmp_path)}) == str(tmp_path / "claude")


def test_a_missing_claude_is_reported_with_how_to_install_it(tmp_path: Path) -> None:
    runner = ClaudeRunner(environ={"PATH": str(tmp_path)})

    with pytest.raises(RunnerUnavailableError) as caught:
        runner.invocation(make_agent(), make_request())

    message = str(caught.value)
    assert "npm install -g @anthropic-ai/claude-code" in message
    assert "PCOORD_CLAUDE_BIN" in message


def test_a_pcoord_claude_bin_that_is_not_executable_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(tmp_path / "nowhere" / "claude"))

    with pytest.raises(RunnerUnavailableError, match=r"PCOORD_CLAUDE_BIN=.*nowhere/claude"):
        ClaudeRunner().invocation(make_agent(), make_request())


# -- runs of the fake claude ------------------------------------------------------------------


def test_a_successful_run_gives_the_result_text_tokens_cost_and_details(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent(model="sonnet", tools=["Read", "Glob"])
    outcome, progress = run(runner.invocation(agent, make_request()), tmp_path)

    result = runner.interpret(agent, outcome)

    assert result.ok, result.error
    assert result.error is None
    assert result.output.startswith("fake claude done: Summarise the findings.")
    assert result.input_tokens == 2400 + 600 + 8000  # uncached + cache writes + cache reads
    assert result.output_tokens == 84
    assert result.cost_usd == pytest.approx(0.00794)
    assert result.rate_limited is False
    assert result.details["num_turns"] == 2
    assert result.details["session_id"]
    assert result.details["model"] == "claude-sonnet-5-5"
    assert set(result.details["model_usage"]) == {"claude-sonnet-5-5"}
    assert result.details["prefix"] == {
        "input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000,
    }
    assert "turn 1: Glob **/*.md" in [p.message for p in progress]


def test_with_a_prompt_cache_the_second_run_reads_the_prefix_the_first_wrote(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent(tools=["Read"])
    cache = str(tmp_path / "cache")
    first, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_CACHE_DIR=cache)
    second, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_CACHE_DIR=cache)
    other_agent = make_agent(body="You audit something else.", tools=["Read"])
    third, _ = run(runner.invocation(other_agent, make_request()), tmp_path, FAKE_CLAUDE_CACHE_DIR=cache)

    written, read, other = (runner.interpret(agent, o).details["prefix"] for o in (first, second, third))

    assert written["cache_creation_input_tokens"] > 0 and written["cache_read_input_tokens"] == 0
    assert read["cache_read_input_tokens"] == written["cache_creation_input_tokens"]
    assert read["cache_creation_input_tokens"] == 0
    assert other["cache_creation_input_tokens"] > 0, "another system prompt is another cache entry"


def test_a_logged_out_cli_fails_with_its_not_logged_in_message(runner: ClaudeRunner, tmp_path: Path) -> None:
    agent = make_agent()
    outcome, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_SCENARIO="logged_out")

    result = runner.interpret(agent, outcome)

    assert outcome.exit_code == 1
    assert result.ok is False
    assert result.error is not None
    assert result.error.startswith("Not logged in · Please run /login")
    assert "ANTHROPIC_API_KEY" in result.error
    assert result.output == ""
    assert result.rate_limited is False


def test_is_error_decides_even_when_the_subtype_says_success_and_the_exit_status_is_zero(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    outcome, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_SCENARIO="logged_out")
    outcome.exit_code = 0

    result = runner.interpret(agent, outcome)

    assert result.ok is False
    assert result.error is not None and result.error.startswith("Not logged in")


@pytest.mark.parametrize(("scenario", "status"), [("rate_limit", "429"), ("overloaded", "529")])
def test_429_and_529_failures_are_marked_rate_limited(
    runner: ClaudeRunner, tmp_path: Path, scenario: str, status: str
) -> None:
    agent = make_agent()
    outcome, progress = run(
        runner.invocation(agent, make_request()), tmp_path,
        FAKE_CLAUDE_SCENARIO=scenario, CLAUDE_CODE_MAX_RETRIES="2",
    )

    result = runner.interpret(agent, outcome)

    assert result.ok is False
    assert result.rate_limited is True
    assert result.error is not None and status in result.error
    assert result.details["api_retries"] == 2
    assert result.details["api_error_status"] == int(status)
    assert any((p.message or "").startswith(f"API retry 2/2 after {status}") for p in progress)


def test_a_rate_limited_run_reports_the_retry_after_its_stream_gave(runner: ClaudeRunner, tmp_path: Path) -> None:
    agent = make_agent()
    outcome, progress = run(
        runner.invocation(agent, make_request()), tmp_path,
        FAKE_CLAUDE_SCENARIO="rate_limit", CLAUDE_CODE_MAX_RETRIES="1", FAKE_CLAUDE_RETRY_AFTER_MS="1500",
    )

    result = runner.interpret(agent, outcome)

    assert result.rate_limited is True
    assert result.details["retry_after_s"] == 1.5
    assert "API retry 1/1 after 429 rate_limit, next try in 1.5 s" in [p.message for p in progress]


def test_a_successful_or_merely_failed_run_asks_for_no_wait(runner: ClaudeRunner, tmp_path: Path) -> None:
    agent = make_agent()
    for scenario in ("success", "crash"):
        outcome, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_SCENARIO=scenario)

        assert runner.interpret(agent, outcome).details["retry_after_s"] is None


def test_the_wait_asked_for_is_the_later_of_the_last_retry_delay_and_a_rejected_windows_reset() -> None:
    now = 1_800_000_000.0
    assert asked_wait_s({"retry_delay_ms": 2500, "rejected_until": now + 60}, now) == 60
    assert asked_wait_s({"retry_delay_ms": 2500, "rejected_until": now - 5}, now) == 2.5  # already open
    assert asked_wait_s({"retry_delay_ms": None, "rejected_until": now - 5}, now) is None  # names no wait
    assert asked_wait_s({"retry_delay_ms": None, "rejected_until": None}, now) is None
    assert asked_wait_s({}, now) is None


def test_a_crash_without_a_result_names_the_exit_status_and_stderr(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    outcome, _ = run(runner.invocation(agent, make_request()), tmp_path, FAKE_CLAUDE_SCENARIO="crash")

    result = runner.interpret(agent, outcome)

    assert result.ok is False
    assert result.error is not None
    assert result.error.startswith("exited with status 2")
    assert "TypeError: Cannot read properties of undefined" in result.error
    assert result.input_tokens is None and result.cost_usd is None


def test_hitting_the_turn_limit_is_a_failure_naming_the_limit(runner: ClaudeRunner, tmp_path: Path) -> None:
    agent = make_agent(extra={"maxTurns": 1})
    outcome, _ = run(runner.invocation(agent, make_request()), tmp_path)

    result = runner.interpret(agent, outcome)

    assert result.ok is False
    assert result.error == "Reached maximum number of turns (1)"
    assert result.details["subtype"] == "error_max_turns"
    assert result.output == "I'll look at the files first.", "the partial work is kept"


def test_a_hung_run_killed_at_its_timeout_keeps_what_the_stream_showed(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    invocation = runner.invocation(agent, make_request())
    proc = subprocess.Popen(
        invocation.argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "FAKE_CLAUDE_SCENARIO": "hang"},
        cwd=tmp_path,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(invocation.stdin)
    proc.stdin.close()
    reader = ClaudeStreamReader()
    seen: list[str] = []
    # Read until the run is visibly at work, then kill it as the supervisor does at a timeout.
    while not seen or not seen[-1].startswith("turn"):
        line = proc.stdout.readline().decode()
        assert line, "the fake ended before its first turn"
        update = reader.on_stdout_line(line)
        if update is not None and update.message:
            seen.append(update.message)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    outcome = AttemptOutcome(
        reason="timeout",
        exit_code=proc.returncode,
        final_event=reader.final_event(),
        error="timed out after 1 s; its process tree was killed",
    )

    result = runner.interpret(agent, outcome)

    assert seen == ["started, model claude-opus-5-5", "turn 1: Bash sleep 3600"]
    assert result.ok is False
    assert result.error == "timed out after 1 s; its process tree was killed"
    assert result.details["turns_seen"] == 1
    assert result.details["tools_used"] == {"Bash": 1}


def test_without_a_final_event_the_captured_stdout_is_read_instead(
    runner: ClaudeRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    outcome, _ = run(runner.invocation(agent, make_request()), tmp_path)
    outcome.final_event = None

    result = runner.interpret(agent, outcome)

    assert result.ok is True
    assert result.output.startswith("fake claude done:")


def test_exit_zero_without_a_result_event_is_not_success(runner: ClaudeRunner) -> None:
    outcome = AttemptOutcome(reason="exited", exit_code=0, stdout="hello from something else\n")

    result = runner.interpret(make_agent(), outcome)

    assert result.ok is False
    assert result.error is not None and "without a stream-json result event" in result.error


def test_the_fake_rejects_stream_json_without_verbose_as_the_real_cli_does(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(FAKE_CLAUDE), "-p", "--output-format", "stream-json"],
        input=b"hi", capture_output=True, cwd=tmp_path, timeout=60, check=False,
    )

    assert proc.returncode == 1
    assert b"--output-format=stream-json requires --verbose" in proc.stderr
