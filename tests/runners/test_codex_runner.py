"""CodexRunner: the argv and prompt it builds, and its reading of runs of the fake `codex`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.runners.codex import CODEX_BIN_ENV, CodexRunner, find_codex
from parallel_coordinator.runners.codex_stream import CodexStreamReader
from tests.runners.cli_runs import FAKES, make_agent, make_request, option, run

FAKE_CODEX = FAKES / "codex"


@pytest.fixture
def runner() -> CodexRunner:
    return CodexRunner(str(FAKE_CODEX))


def run_fake(runner: CodexRunner, tmp_path: Path, scenario: str = "success", **fields: object):  # type: ignore[no-untyped-def]
    agent = make_agent(runner="codex", **fields)
    outcome, progress = run(runner.invocation(agent, make_request()), CodexStreamReader(), tmp_path,
                            {**os.environ, "FAKE_CODEX_SCENARIO": scenario})
    return runner.interpret(agent, outcome), outcome, progress


# -- argv -------------------------------------------------------------------------------------


def test_argv_asks_for_a_json_exec_run_with_the_prompt_on_stdin(runner: CodexRunner) -> None:
    invocation = runner.invocation(make_agent(), make_request(working_directory="/srv/project"))

    assert invocation.argv[:4] == [str(FAKE_CODEX), "exec", "--json", "--skip-git-repo-check"]
    assert invocation.argv[-1] == "-"
    assert option(invocation.argv, "-C") == "/srv/project"
    assert invocation.stream == "codex"
    assert invocation.stdin.decode().startswith("Add the missing test.")


def test_the_body_becomes_developer_instructions_that_survive_any_characters(
    runner: CodexRunner, tmp_path: Path
) -> None:
    body = '- Start with a dash.\nQuote "this", keep C:\\path\\n and a tab\there.\x07 Done ✓'
    record = tmp_path / "record.json"
    agent = make_agent(body=body)

    outcome, _ = run(runner.invocation(agent, make_request()), CodexStreamReader(), tmp_path,
                     {**os.environ, "FAKE_CODEX_RECORD": str(record)})

    assert outcome.exit_code == 0, outcome.stderr_tail
    assert json.loads(record.read_text())["config"] == {"developer_instructions": body}


def test_no_instructions_flag_for_an_agent_without_a_body(runner: CodexRunner) -> None:
    assert "-c" not in runner.invocation(make_agent(body=""), make_request()).argv


@pytest.mark.parametrize(
    ("tools", "sandbox"),
    [(["Read", "Grep"], "read-only"), ([], "read-only"), (["Read", "Edit"], "workspace-write"),
     (["Bash(git *)"], "workspace-write"), (None, "workspace-write")],
)
def test_the_sandbox_follows_what_the_tools_allow(runner: CodexRunner, tools: list[str] | None, sandbox: str) -> None:
    argv = runner.invocation(make_agent(tools=tools), make_request()).argv

    assert option(argv, "-s") == sandbox


def test_an_agent_files_own_sandbox_wins_and_a_bad_one_is_named(runner: CodexRunner) -> None:
    argv = runner.invocation(make_agent(tools=["Read"], extra={"sandbox": "danger-full-access"}), make_request()).argv
    assert option(argv, "-s") == "danger-full-access"

    with pytest.raises(RunnerUnavailableError, match="sandbox 'rw' is not one of read-only, workspace-write"):
        runner.invocation(make_agent(extra={"sandbox": "rw"}), make_request())


@pytest.mark.parametrize(("model", "expected"), [("gpt-6.1-sol", "gpt-6.1-sol"), ("inherit", None), (None, None)])
def test_the_model_is_passed_unless_the_agent_inherits_it(
    runner: CodexRunner, model: str | None, expected: str | None
) -> None:
    assert option(runner.invocation(make_agent(model=model), make_request()).argv, "-m") == expected


def test_every_flag_we_build_is_one_the_fake_accepts_as_the_real_cli_does(runner: CodexRunner, tmp_path: Path) -> None:
    agent = make_agent(model="gpt-6.1-sol", tools=["Read"])
    outcome, _ = run(runner.invocation(agent, make_request(working_directory=str(tmp_path))), CodexStreamReader(),
                     tmp_path, dict(os.environ))

    assert "unexpected argument" not in outcome.stderr_tail
    assert outcome.exit_code == 0


# -- reading runs -----------------------------------------------------------------------------


def test_a_successful_run_reads_as_ok_with_the_last_message_tokens_and_tool_progress(
    runner: CodexRunner, tmp_path: Path
) -> None:
    result, outcome, progress = run_fake(runner, tmp_path)

    assert result.ok, result.error
    assert result.output.startswith("fake codex done: Add the missing test.")
    assert (result.input_tokens, result.output_tokens) == (1000, 30)
    assert outcome.tokens_used == 1030
    assert result.details["tools_used"] == {"command_execution": 1}
    assert result.rate_limited is False
    messages = [p.message for p in progress]
    assert messages[0] == "started"
    assert "$ /bin/bash -lc ls (exit 0)" in messages
    assert messages[-1] == "finished, 1,030 tokens"


def test_a_logged_out_run_fails_once_naming_how_to_log_in(runner: CodexRunner, tmp_path: Path) -> None:
    result, _, _ = run_fake(runner, tmp_path, "logged_out")

    assert result.ok is False
    assert result.retryable is False
    assert result.rate_limited is False
    assert result.error is not None and result.error.startswith("unexpected status 401 Unauthorized")
    assert "codex login" in result.error and "CODEX_API_KEY" in result.error


def test_a_rate_limited_run_is_marked_so_the_engine_backs_off(runner: CodexRunner, tmp_path: Path) -> None:
    result, _, _ = run_fake(runner, tmp_path, "rate_limit")

    assert result.ok is False
    assert result.rate_limited is True
    assert result.retryable is True
    assert result.error == "exceeded retry limit, last status: 429 Too Many Requests"


def test_a_crash_names_the_exit_status_and_the_panic(runner: CodexRunner, tmp_path: Path) -> None:
    result, _, _ = run_fake(runner, tmp_path, "crash")

    assert result.ok is False and result.retryable is True
    assert result.error is not None and result.error.startswith("exited with status 101")
    assert "fake codex crashed" in result.error


def test_outside_a_git_repository_with_the_check_kept_the_refusal_is_clear_and_not_retried(
    runner: CodexRunner, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    result, _, _ = run_fake(runner, tmp_path, extra={"skipGitRepoCheck": False})
    inside, _, _ = run_fake(runner, tmp_path / "repo", extra={"skipGitRepoCheck": False})

    assert result.ok is False and result.retryable is False
    assert result.error is not None
    assert "Not inside a trusted directory and --skip-git-repo-check was not specified." in result.error
    assert "skipGitRepoCheck: false" in result.error
    assert inside.ok, inside.error


def test_a_run_stopped_for_its_token_budget_after_its_turn_completed_keeps_its_answer(
    runner: CodexRunner, tmp_path: Path
) -> None:
    agent = make_agent()
    done, _ = run(runner.invocation(agent, make_request()), CodexStreamReader(), tmp_path, dict(os.environ))
    stopped = AttemptOutcome(reason="budget", stdout=done.stdout, final_event=done.final_event,
                             error="token budget exceeded")
    cut_short = AttemptOutcome(reason="budget", final_event={**(done.final_event or {}), "completed": False},
                               error="token budget exceeded: 1,030 tokens > 10")

    kept = runner.interpret(agent, stopped)
    lost = runner.interpret(agent, cut_short)

    assert kept.ok and kept.output.startswith("fake codex done:")
    assert kept.details["token_budget_passed"] is True
    assert lost.ok is False and lost.error is not None and lost.error.startswith("token budget exceeded")


def test_reconnects_are_progress_not_failure_and_a_429_among_them_marks_the_run() -> None:
    reader = CodexStreamReader()
    reader.on_stdout_line('{"type":"thread.started","thread_id":"t"}')
    update = reader.on_stdout_line(
        '{"type":"error","message":"Reconnecting... 2/5 (exceeded retry limit, last status: 429 Too Many Requests)"}'
    )

    summary = reader.final_event()
    assert update is not None and (update.message or "").startswith("Reconnecting... 2/5")
    assert summary is not None
    assert summary["errors"] == [] and summary["reconnects"] == 1 and summary["rate_limited"] is True
    assert reader.tokens_used() is None


def test_a_reader_that_saw_no_event_has_no_final_event() -> None:
    reader = CodexStreamReader()
    reader.on_stdout_line("WARNING: proceeding, even though we could not create PATH aliases")

    assert reader.final_event() is None


# -- finding the executable -------------------------------------------------------------------


def test_without_codex_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(RunnerUnavailableError, match=r"npm install -g @openai/codex.*PCOORD_CODEX_BIN"):
        find_codex({"PATH": str(tmp_path)})


def test_a_configured_executable_that_is_not_one_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunnerUnavailableError, match=f"{CODEX_BIN_ENV}='/nowhere/codex' is not an executable"):
        find_codex({CODEX_BIN_ENV: "/nowhere/codex", "PATH": str(tmp_path)})

    assert find_codex({CODEX_BIN_ENV: str(FAKE_CODEX), "PATH": ""}) == str(FAKE_CODEX)


def test_a_skip_git_repo_check_that_is_not_a_boolean_is_refused_naming_it() -> None:
    agent = make_agent(extra={"skipGitRepoCheck": "false"})
    with pytest.raises(RunnerUnavailableError, match="skipGitRepoCheck 'false'"):
        CodexRunner("/bin/true").invocation(agent, make_request())


def test_limit_words_in_the_log_of_a_run_that_finished_do_not_slow_the_runner(
    runner: CodexRunner, tmp_path: Path
) -> None:
    _, outcome, _ = run_fake(runner, tmp_path)
    logged = dataclasses.replace(outcome, stderr_tail="note: the README explains rate limits, 429s and quota")
    result = runner.interpret(make_agent(), logged)
    assert result.ok and result.rate_limited is False
