"""CodexRunner against the real Codex CLI (0.169, pinned): logged out, outside a git repository, and on a
loopback stub of the Responses API, with HOME in a temp dir so nothing of this machine's reaches it.

Skipped when the CLI is not installed: `scripts/install-peers.sh` installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.runners.codex import CodexRunner
from parallel_coordinator.runners.codex_stream import CodexStreamReader
from parallel_coordinator.runners.streams import Progress
from tests.runners.api_stubs import ResponsesAPI, serving
from tests.runners.cli_runs import fake_options, make_request, options_in_help, run

PINNED_VERSION = "0.169.0"
DEFAULT_PEER = Path.home() / ".cache" / "parallel-coordinator" / "peers" / "node_modules" / ".bin" / "codex"

AGENT = AgentSpec(
    name="coder",
    runner="codex",
    body='- You write small changes.\nQuote "exactly", keep C:\\dir.',  # a leading dash, quotes, a backslash
    model="gpt-test-model",
    tools=["Read", "Grep"],
)
REQUEST = make_request(context={"t1": "DEPENDENCY-OUTPUT-MARKER: the tests are missing."})


@pytest.fixture(scope="module")
def codex() -> Path:
    path = Path(os.environ.get("PCOORD_REAL_CODEX") or DEFAULT_PEER)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"the real Codex CLI is not at {path}: run scripts/install-peers.sh (npm install --prefix "
            f"~/.cache/parallel-coordinator/peers @openai/codex@{PINNED_VERSION}) or set PCOORD_REAL_CODEX"
        )
    return path


def clean_env(home: Path) -> dict[str, str]:
    """The test's environment without any OpenAI or Codex credentials or settings, HOME in a temp dir."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "CODEX_"))}
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


def on_stub(invocation: Invocation, url: str) -> Invocation:
    """Our argv, pointed at the stub as a provider of its own (no websocket, no retries: quick and offline)."""
    provider = {"name": '"stub"', "base_url": f'"{url}/v1"', "supports_websockets": "false",
                "request_max_retries": "0", "stream_max_retries": "0"}
    extra = ["-c", 'model_provider="stub"']
    for key, value in provider.items():
        extra += ["-c", f"model_providers.stub.{key}={value}"]
    argv = invocation.argv
    return Invocation(argv=[*argv[:-1], *extra, argv[-1]], stdin=invocation.stdin, env=invocation.env,
                      stream=invocation.stream)


def run_real(invocation: Invocation, cwd: Path, home: Path) -> tuple[AttemptOutcome, list[Progress]]:
    return run(invocation, CodexStreamReader(), cwd, clean_env(home), timeout=60)


def test_the_cli_is_the_pinned_version(codex: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(codex), "--version"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)

    assert proc.stdout.decode().split() == ["codex-cli", PINNED_VERSION]


def test_the_cli_documents_the_flags_we_pass(codex: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(codex), "exec", "--help"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)
    help_text = proc.stdout.decode()

    for flag in ("--json", "--skip-git-repo-check", "--sandbox", "--cd", "--model", "--config",
                 "read-only, workspace-write, danger-full-access", "(or if `-` is used)"):
        assert flag in help_text, flag


def test_the_fake_codex_accepts_exactly_the_options_of_the_real_one(codex: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(codex), "exec", "--help"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)

    assert fake_options("codex", "FLAGS", "VALUE_OPTIONS") == options_in_help(proc.stdout.decode())


def test_outside_a_git_repository_with_the_check_kept_the_refusal_is_read_as_clear_and_final(
    codex: Path, tmp_path: Path
) -> None:
    agent = AGENT.model_copy(update={"extra": {"skipGitRepoCheck": False}})
    runner = CodexRunner(str(codex))
    (tmp_path / "work").mkdir()

    outcome, _ = run_real(runner.invocation(agent, REQUEST), tmp_path / "work", tmp_path / "home")
    result = runner.interpret(agent, outcome)

    assert outcome.exit_code == 1
    assert result.ok is False and result.retryable is False
    assert result.error is not None
    assert "Not inside a trusted directory and --skip-git-repo-check was not specified." in result.error


def test_logged_out_our_argv_is_accepted_and_the_401_is_read_as_a_missing_login(codex: Path, tmp_path: Path) -> None:
    runner = CodexRunner(str(codex))
    with serving(ResponsesAPI, 401) as (url, requests):
        outcome, progress = run_real(on_stub(runner.invocation(AGENT, REQUEST), url), tmp_path, tmp_path / "home")
    result = runner.interpret(AGENT, outcome)

    assert "unexpected argument" not in outcome.stderr_tail, outcome.stderr_tail
    assert requests, "codex never reached the API"
    assert outcome.exit_code == 1
    assert result.ok is False and result.retryable is False and result.rate_limited is False
    assert result.error is not None and result.error.startswith("unexpected status 401 Unauthorized")
    assert "codex login" in result.error
    assert progress[0].message == "started"


def test_a_successful_real_run_reads_as_ok_with_tokens_and_our_instructions_reached_the_model(
    codex: Path, tmp_path: Path
) -> None:
    runner = CodexRunner(str(codex))
    work = tmp_path / "work"
    work.mkdir()
    request = make_request(context=REQUEST.context, working_directory=str(work))
    with serving(ResponsesAPI, 200) as (url, requests):
        outcome, _ = run_real(on_stub(runner.invocation(AGENT, request), url), tmp_path, tmp_path / "home")
    result = runner.interpret(AGENT, outcome)

    assert result.ok, result.error
    assert result.output == "STUB-ANSWER: done."
    assert (result.input_tokens, result.output_tokens) == (1000, 30)
    assert outcome.tokens_used == 1030
    sent = requests[0]["body"]
    assert sent["model"] == "gpt-test-model"
    messages = {item.get("role"): json.dumps(item) for item in sent["input"] if item.get("type") == "message"}
    assert json.dumps(AGENT.body)[1:-1] in messages["developer"], "the body arrived whole as developer instructions"
    assert "Add the missing test." in messages["user"] and "DEPENDENCY-OUTPUT-MARKER" in messages["user"]
    # The session's own record says where it ran and in which sandbox.
    [rollout] = (tmp_path / "home" / ".codex" / "sessions").rglob("rollout-*.jsonl")
    events = [json.loads(line) for line in rollout.read_text().splitlines()]
    context = next(e["payload"] for e in events if e["type"] == "turn_context")
    assert context["cwd"] == str(work)
    assert context["sandbox_policy"] == {"type": "read-only"}


def test_a_real_run_against_a_rate_limited_api_is_marked_rate_limited(codex: Path, tmp_path: Path) -> None:
    runner = CodexRunner(str(codex))
    with serving(ResponsesAPI, 429) as (url, _):
        outcome, _ = run_real(on_stub(runner.invocation(AGENT, REQUEST), url), tmp_path, tmp_path / "home")
    result = runner.interpret(AGENT, outcome)

    assert result.ok is False
    assert result.rate_limited is True and result.retryable is True
    assert result.error is not None and "429 Too Many Requests" in result.error
