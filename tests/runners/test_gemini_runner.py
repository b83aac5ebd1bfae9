"""GeminiRunner: the argv and prompt it builds, and its reading of runs of the fake `gemini`."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.runners.gemini import GEMINI_BIN_ENV, GeminiRunner, find_gemini
from parallel_coordinator.runners.gemini_stream import GeminiStreamReader
from tests.runners.cli_runs import FAKES, make_agent, make_request, option, run

FAKE_GEMINI = FAKES / "gemini"


@pytest.fixture
def runner() -> GeminiRunner:
    return GeminiRunner(str(FAKE_GEMINI))


def run_fake(runner: GeminiRunner, tmp_path: Path, scenario: str = "success", **fields: object):  # type: ignore[no-untyped-def]
    agent = make_agent(runner="gemini", **fields)
    outcome, progress = run(runner.invocation(agent, make_request()), GeminiStreamReader(), tmp_path,
                            {**os.environ, "FAKE_GEMINI_SCENARIO": scenario})
    return runner.interpret(agent, outcome), outcome, progress


# -- argv and prompt --------------------------------------------------------------------------


def test_argv_asks_for_a_headless_stream_json_run_with_the_prompt_on_stdin(runner: GeminiRunner) -> None:
    invocation = runner.invocation(make_agent(), make_request())

    assert invocation.argv[:6] == [str(FAKE_GEMINI), "-p", "", "-o", "stream-json", "--skip-trust"]
    assert invocation.stream == "gemini"


def test_the_body_opens_the_prompt_as_the_role_and_the_task_follows(runner: GeminiRunner, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    request = make_request(context={"t1": "DEPENDENCY-OUTPUT-MARKER"})

    outcome, _ = run(runner.invocation(make_agent(), request), GeminiStreamReader(), tmp_path,
                     {**os.environ, "FAKE_GEMINI_RECORD": str(record)})

    assert outcome.exit_code == 0, outcome.stderr_tail
    stdin = json.loads(record.read_text())["stdin"]
    assert stdin.startswith("## Your role (follow it throughout)\n\nYou write small, tested changes.")
    assert stdin.index("## Your task\n\nAdd the missing test.") < stdin.index("DEPENDENCY-OUTPUT-MARKER")


def test_an_agent_without_a_body_gets_the_task_alone(runner: GeminiRunner) -> None:
    assert runner.invocation(make_agent(body=""), make_request()).stdin.decode().startswith("Add the missing test.")


@pytest.mark.parametrize(
    ("tools", "mode"),
    [(["Read", "Grep"], "default"), ([], "default"), (["Read", "Write"], "auto_edit"), (["Bash"], "yolo"),
     (None, "yolo")],
)
def test_the_approval_mode_follows_what_the_tools_allow(
    runner: GeminiRunner, tools: list[str] | None, mode: str
) -> None:
    assert option(runner.invocation(make_agent(tools=tools), make_request()).argv, "--approval-mode") == mode


def test_an_agent_files_own_approval_mode_wins_and_a_bad_one_is_named(runner: GeminiRunner) -> None:
    argv = runner.invocation(make_agent(extra={"approvalMode": "plan"}), make_request()).argv
    assert option(argv, "--approval-mode") == "plan"

    with pytest.raises(RunnerUnavailableError, match="approvalMode 'auto' is not one of default, auto_edit, yolo"):
        runner.invocation(make_agent(extra={"approvalMode": "auto"}), make_request())


@pytest.mark.parametrize(("model", "expected"), [("gemini-2.5-flash", "gemini-2.5-flash"), ("inherit", None)])
def test_the_model_is_passed_unless_the_agent_inherits_it(
    runner: GeminiRunner, model: str, expected: str | None
) -> None:
    assert option(runner.invocation(make_agent(model=model), make_request()).argv, "-m") == expected


# -- reading runs -----------------------------------------------------------------------------


def test_a_successful_run_reads_as_ok_with_the_answer_after_the_last_tool_and_every_token(
    runner: GeminiRunner, tmp_path: Path
) -> None:
    result, outcome, progress = run_fake(runner, tmp_path, model="gemini-2.5-flash")

    assert result.ok, result.error
    assert result.output.startswith("fake gemini done: You write small, tested changes.")
    assert (result.input_tokens, result.output_tokens) == (900, 40)  # 940 in all: answer and thoughts
    assert outcome.tokens_used == 940
    assert result.details["tools_used"] == {"list_directory": 1}
    messages = [p.message for p in progress]
    assert messages[0] == "started, model gemini-2.5-flash"
    assert "tool 1: list_directory ." in messages
    assert messages[-1] == "finished, 940 tokens"


def test_a_logged_out_run_fails_once_naming_how_to_log_in(runner: GeminiRunner, tmp_path: Path) -> None:
    result, outcome, _ = run_fake(runner, tmp_path, "logged_out")

    assert outcome.exit_code == 41
    assert result.ok is False and result.retryable is False and result.rate_limited is False
    assert result.error is not None and "Please set an Auth method" in result.error
    assert "set GEMINI_API_KEY" in result.error


def test_a_spent_quota_is_marked_rate_limited_so_the_engine_backs_off(runner: GeminiRunner, tmp_path: Path) -> None:
    result, outcome, _ = run_fake(runner, tmp_path, "rate_limit")

    assert outcome.exit_code == 173
    assert result.ok is False and result.rate_limited is True and result.retryable is True
    assert result.error is not None
    assert result.error.startswith("[API Error: You have exhausted your daily quota on this model.]")


def test_a_crash_names_the_exit_status_and_the_last_stderr(runner: GeminiRunner, tmp_path: Path) -> None:
    result, _, _ = run_fake(runner, tmp_path, "crash")

    assert result.ok is False and result.retryable is True
    assert result.error is not None and result.error.startswith("exited with status 1")
    assert "fake gemini crashed" in result.error


def test_an_untrusted_directory_with_the_trust_check_kept_is_a_clear_failure_not_retried(
    runner: GeminiRunner, tmp_path: Path
) -> None:
    result, outcome, _ = run_fake(runner, tmp_path, extra={"skipTrust": False})

    assert outcome.exit_code == 55
    assert result.ok is False and result.retryable is False
    assert result.error is not None and "not running in a trusted directory" in result.error
    assert "skipTrust: false" in result.error


def test_a_run_stopped_for_its_token_budget_after_its_result_keeps_its_answer(
    runner: GeminiRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    done, _ = run(runner.invocation(agent, make_request()), GeminiStreamReader(), tmp_path, dict(os.environ))

    kept = runner.interpret(agent, AttemptOutcome(reason="budget", final_event=done.final_event))

    assert kept.ok and kept.output.startswith("fake gemini done:")
    assert kept.details["token_budget_passed"] is True


def test_the_kept_answer_is_bounded_and_says_it_was_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    from parallel_coordinator.runners import gemini_stream

    monkeypatch.setattr(gemini_stream, "_TEXT_LIMIT", 10)
    reader = GeminiStreamReader()
    for _ in range(3):
        reader.on_stdout_line('{"type":"message","role":"assistant","content":"0123456","delta":true}')

    summary = reader.final_event()
    assert summary is not None and summary["answer"] == "0123456012" and summary["answer_cut"] is True


# -- finding the executable -------------------------------------------------------------------


def test_without_gemini_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(RunnerUnavailableError, match=r"npm install -g @google/gemini-cli.*PCOORD_GEMINI_BIN"):
        find_gemini({"PATH": str(tmp_path)})


def test_a_configured_executable_that_is_not_one_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunnerUnavailableError, match=f"{GEMINI_BIN_ENV}='/nowhere/gemini' is not an executable"):
        find_gemini({GEMINI_BIN_ENV: "/nowhere/gemini", "PATH": str(tmp_path)})


def test_a_gemini_agent_gets_its_own_login_but_not_the_servers_other_google_secrets() -> None:
    from parallel_coordinator.execution.environment import EnvironmentPolicy

    environ = {
        "PATH": "/usr/bin", "GEMINI_API_KEY": "g-key", "GOOGLE_API_KEY": "g-key-2",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/u/adc.json",
        "GOOGLE_CLIENT_SECRET": "oauth-app-secret", "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.token",
    }
    env = EnvironmentPolicy().agent_environment(GeminiRunner.env_passthrough, environ=environ, depth=0)
    assert {"GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"} <= env.keys()
    assert "GOOGLE_CLIENT_SECRET" not in env and "GOOGLE_OAUTH_ACCESS_TOKEN" not in env


def test_limit_words_in_the_log_of_a_run_that_finished_do_not_slow_the_runner(
    runner: GeminiRunner, tmp_path: Path
) -> None:
    _, outcome, _ = run_fake(runner, tmp_path)
    logged = dataclasses.replace(outcome, stderr_tail="note: the README explains rate limits, 429s and quota")
    result = runner.interpret(make_agent(), logged)
    assert result.ok and result.rate_limited is False
