"""GeminiRunner against the real Gemini CLI (0.61, pinned): logged out, in an untrusted directory, and on a
loopback stub of the Gemini API, with HOME in a temp dir so nothing of this machine's reaches it.

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
from parallel_coordinator.runners.gemini import GeminiRunner
from parallel_coordinator.runners.gemini_stream import GeminiStreamReader
from parallel_coordinator.runners.streams import Progress
from tests.runners.api_stubs import GeminiAPI, serving
from tests.runners.cli_runs import fake_options, make_request, options_in_help, run

PINNED_VERSION = "0.61.0"
DEFAULT_PEER = Path.home() / ".cache" / "parallel-coordinator" / "peers" / "node_modules" / ".bin" / "gemini"

AGENT = AgentSpec(name="researcher", runner="gemini", body="- You research.\nAnswer in one line.",
                  model="gemini-2.5-flash", tools=["Read", "Grep"])
REQUEST = make_request(context={"t1": "DEPENDENCY-OUTPUT-MARKER: the tests are missing."})


@pytest.fixture(scope="module")
def gemini() -> Path:
    path = Path(os.environ.get("PCOORD_REAL_GEMINI") or DEFAULT_PEER)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"the real Gemini CLI is not at {path}: run scripts/install-peers.sh (npm install --prefix "
            f"~/.cache/parallel-coordinator/peers @google/gemini-cli@{PINNED_VERSION}) or set PCOORD_REAL_GEMINI"
        )
    return path


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any Gemini or Google credentials or settings, HOME in a temp dir."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GEMINI_", "GOOGLE_", "CLOUD_"))}
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), **extra)
    return env


def with_api_key(home: Path, url: str) -> dict[str, str]:
    """Logged in with a made-up API key, against the stub (the CLI takes a base URL for its API-key method)."""
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return clean_env(home, GEMINI_API_KEY="test-key-not-a-key", GOOGLE_GEMINI_BASE_URL=url)


def run_real(invocation: Invocation, cwd: Path, env: dict[str, str]) -> tuple[AttemptOutcome, list[Progress]]:
    return run(invocation, GeminiStreamReader(), cwd, env, timeout=90)


def test_the_cli_is_the_pinned_version(gemini: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(gemini), "--version"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)

    assert proc.stdout.decode().strip() == PINNED_VERSION


def test_the_cli_documents_the_flags_we_pass(gemini: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(gemini), "--help"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)
    help_text = proc.stdout.decode()

    for flag in ("--prompt", "Appended to input on stdin", "--output-format", '"stream-json"', "--skip-trust",
                 "--approval-mode", '"default", "auto_edit", "yolo", "plan"', "--model"):
        assert flag in help_text, flag


def test_the_fake_gemini_accepts_exactly_the_options_of_the_real_one(gemini: Path, tmp_path: Path) -> None:
    proc = subprocess.run([str(gemini), "--help"], capture_output=True, env=clean_env(tmp_path / "home"),
                          timeout=60, check=False)

    assert fake_options("gemini", "FLAGS", "VALUE_OPTIONS", "ARRAY_OPTIONS") == options_in_help(proc.stdout.decode())


def test_logged_out_our_argv_is_accepted_and_the_missing_auth_method_is_read_as_a_missing_login(
    gemini: Path, tmp_path: Path
) -> None:
    runner = GeminiRunner(str(gemini))

    outcome, _ = run_real(runner.invocation(AGENT, REQUEST), tmp_path, clean_env(tmp_path / "home"))
    result = runner.interpret(AGENT, outcome)

    assert outcome.exit_code == 41
    assert result.ok is False and result.retryable is False and result.rate_limited is False
    assert result.error is not None and "Please set an Auth method" in result.error
    assert "set GEMINI_API_KEY" in result.error


def test_with_the_trust_check_kept_an_untrusted_directory_is_read_as_clear_and_final(
    gemini: Path, tmp_path: Path
) -> None:
    agent = AGENT.model_copy(update={"extra": {"skipTrust": False}})
    runner = GeminiRunner(str(gemini))

    outcome, _ = run_real(runner.invocation(agent, REQUEST), tmp_path,
                          clean_env(tmp_path / "home", GEMINI_API_KEY="test-key-not-a-key"))
    result = runner.interpret(agent, outcome)

    assert outcome.exit_code == 55
    assert result.ok is False and result.retryable is False
    assert result.error is not None and "not running in a trusted directory" in result.error


def test_a_successful_real_run_reads_as_ok_with_tokens_and_our_prompt_reached_the_model(
    gemini: Path, tmp_path: Path
) -> None:
    runner = GeminiRunner(str(gemini))
    with serving(GeminiAPI, 200) as (url, requests):
        outcome, progress = run_real(runner.invocation(AGENT, REQUEST), tmp_path, with_api_key(tmp_path / "home", url))
    result = runner.interpret(AGENT, outcome)

    assert result.ok, result.error
    assert result.output == "STUB-ANSWER: gemini done."
    assert (result.input_tokens, result.output_tokens) == (900, 40)
    assert outcome.tokens_used == 940
    assert progress[0].message == "started, model gemini-2.5-flash"
    [sent] = [r for r in requests if "streamGenerateContent" in r["path"]]
    assert "/models/gemini-2.5-flash:" in sent["path"]
    prompt = json.dumps(sent["body"]["contents"])
    assert "## Your role (follow it throughout)" in prompt and "- You research." in prompt
    assert "Add the missing test." in prompt and "DEPENDENCY-OUTPUT-MARKER" in prompt


def test_a_real_run_on_a_spent_quota_is_marked_rate_limited(gemini: Path, tmp_path: Path) -> None:
    runner = GeminiRunner(str(gemini))
    with serving(GeminiAPI, 429) as (url, _):
        outcome, _ = run_real(runner.invocation(AGENT, REQUEST), tmp_path, with_api_key(tmp_path / "home", url))
    result = runner.interpret(AGENT, outcome)

    assert result.ok is False
    assert result.rate_limited is True and result.retryable is True
    assert result.error is not None and "exhausted your daily quota" in result.error
