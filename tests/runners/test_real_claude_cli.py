"""ClaudeRunner against the real Claude Code CLI (2.1.330, pinned): logged out, and on a loopback API stub.

Skipped when the CLI is not installed: `scripts/install-peers.sh` installs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import time
from http.server import BaseHTTPRequestHandler
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.engine.attempts import with_files
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, TaskRequest
from parallel_coordinator.runners.claude import ClaudeRunner
from parallel_coordinator.runners.claude_stream import ClaudeStreamReader
from parallel_coordinator.runners.streams import Progress
from tests.runners.api_stubs import serving

PINNED_VERSION = "2.1.330"
FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
DEFAULT_PEER = Path.home() / ".cache" / "parallel-coordinator" / "peers" / "node_modules" / ".bin" / "claude"


def real_claude() -> Path:
    path = Path(os.environ.get("PCOORD_REAL_CLAUDE") or DEFAULT_PEER)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(
            f"the real Claude Code CLI is not at {path}: run scripts/install-peers.sh (npm install "
            f"--prefix ~/.cache/parallel-coordinator/peers @anthropic-ai/claude-code@{PINNED_VERSION}) "
            "or set PCOORD_REAL_CLAUDE to a claude executable"
        )
    return path


@pytest.fixture(scope="module")
def claude() -> Path:
    return real_claude()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any Claude credentials or settings, HOME in a temp dir."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_", "VERTEX_"))
    }
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def cli(claude: Path, *args: str, home: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(claude), *args], input=stdin, capture_output=True, env=clean_env(home), cwd=home.parent,
        timeout=60, check=False,
    )


def run(invocation: Invocation, cwd: Path, env: dict[str, str]) -> tuple[AttemptOutcome, list[Progress]]:
    started = time.time()
    proc = subprocess.run(
        invocation.argv, input=invocation.stdin, capture_output=True, env=env, cwd=cwd, timeout=90,
        check=False,
    )
    reader = ClaudeStreamReader()
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    progress = [p for p in map(reader.on_stdout_line, stdout.splitlines()) if p is not None]
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


AGENT = AgentSpec(
    name="doc-auditor",
    body="- You audit documentation.\nAnswer in one line.",  # a leading dash must not read as a flag
    model="sonnet",
    tools=["Read", "Glob"],
    disallowed_tools=["Write"],
    extra={"permissionMode": "dontAsk", "maxTurns": 4},
)
REQUEST = TaskRequest(
    session_id="s1",
    task_id="t3",
    description="List the Markdown files.",
    task_description="Audit the project's documentation.",
    context={"t1": "DEPENDENCY-OUTPUT-MARKER: README is outdated."},
)


def test_the_cli_is_the_pinned_version(claude: Path, tmp_path: Path) -> None:
    proc = cli(claude, "--version", home=tmp_path / "home")

    assert proc.stdout.decode().split()[0] == PINNED_VERSION


def test_the_cli_documents_the_flags_we_pass(claude: Path, tmp_path: Path) -> None:
    proc = cli(claude, "--help", home=tmp_path / "home")
    help_text = proc.stdout.decode()

    for flag in ("--print", "--output-format", "--verbose", "--append-system-prompt", "--model", "--tools",
                 "--allowedTools", "--disallowedTools", "--permission-mode", "--effort"):
        assert flag in help_text, flag


# An option line of `--help`: "  -n, --name <name>", "  --bg, --background", "  --debug-file <path>".
_HELP_OPTION = re.compile(r"^  (?:(-\w), )?(--[\w-]+)(?:, (--[\w-]+))?(?: (<[^>]+>|\[[^\]]+\]))?")


def help_options(text: str) -> dict[str, str]:
    """Every option `--help` lists, each spelling: flag, value, optional (value) or variadic."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _HELP_OPTION.match(line)
        if match is None:
            continue
        short, long, alias, argument = match.groups()
        kind = "flag"
        if argument:
            kind = "optional" if argument.startswith("[") else "variadic" if "..." in argument else "value"
        found.update({name: kind for name in (short, long, alias) if name})
    return found


def load_fake() -> ModuleType:
    loader = SourceFileLoader("fake_claude", str(FAKE_CLAUDE))
    spec = importlib.util.spec_from_loader("fake_claude", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_fake_claude_takes_the_options_of_the_real_one_the_same_way(claude: Path, tmp_path: Path) -> None:
    real = help_options(cli(claude, "--help", home=tmp_path / "home").stdout.decode())
    fake = load_fake()
    known = {
        **dict.fromkeys(fake.FLAGS, "flag"), **dict.fromkeys(fake.VALUE_OPTIONS, "value"),
        **dict.fromkeys(fake.OPTIONAL_VALUE_OPTIONS, "optional"), **dict.fromkeys(fake.VARIADIC_OPTIONS, "variadic"),
    }

    assert len(real) > 60, "the help text was read"
    assert {name: kind for name, kind in known.items() if name in real} == real
    # What the fake takes beyond --help: options the real CLI parses all the same (tested below).
    assert set(known) - set(real) == {"--max-turns", "--append-system-prompt-file", "--system-prompt-file"}


@pytest.mark.parametrize("option", ["--append-system-prompt-file", "--system-prompt-file"])
def test_the_hidden_prompt_file_options_are_parsed(claude: Path, tmp_path: Path, option: str) -> None:
    proc = cli(claude, "-p", "--output-format", "stream-json", "--verbose", option, str(tmp_path / "none.md"),
               home=tmp_path / "home", stdin=b"hi")

    assert b"prompt file not found" in proc.stderr
    assert b"unknown option" not in proc.stderr


def test_max_turns_is_a_hidden_but_parsed_option(claude: Path, tmp_path: Path) -> None:
    proc = cli(
        claude, "-p", "--output-format", "stream-json", "--verbose", "--max-turns", "many",
        home=tmp_path / "home", stdin=b"hi",
    )

    assert b"'--max-turns <turns>' argument 'many' is invalid" in proc.stderr


def test_logged_out_our_argv_is_accepted_and_the_run_fails_with_not_logged_in(
    claude: Path, tmp_path: Path
) -> None:
    runner = ClaudeRunner(str(claude))
    invocation = runner.invocation(AGENT, REQUEST)

    outcome, progress = run(invocation, tmp_path, clean_env(tmp_path / "home"))
    result = runner.interpret(AGENT, outcome)

    assert "error:" not in outcome.stderr_tail, f"usage error: {outcome.stderr_tail}"
    init = json.loads(outcome.stdout.splitlines()[0])
    assert init["subtype"] == "init"
    assert init["model"].startswith("claude-sonnet"), "the alias reached the CLI"
    assert sorted(init["tools"]) == ["Glob", "Read"], "--tools limited the built-in tools"
    assert init["permissionMode"] == "dontAsk"
    assert outcome.exit_code == 1
    assert result.ok is False
    assert result.error is not None and result.error.startswith("Not logged in · Please run /login")
    assert result.rate_limited is False
    assert progress[0].message == f"started, model {init['model']}"


def lean_run(claude: Path, tmp_path: Path, env: dict[str, str], **extra: Any) -> tuple[AttemptOutcome, Any]:
    """A run of AGENT with more front matter, from a project directory, with the runner reading the run's HOME."""
    agent = AGENT.model_copy(update={"extra": {**AGENT.extra, **extra}})
    runner = ClaudeRunner(str(claude), environ=env)
    request = TaskRequest(**{**REQUEST.__dict__, "working_directory": str(tmp_path)})
    # As the engine starts it: the invocation's files (the MCP configuration) written to the attempt's folder.
    outcome, _ = run(with_files(runner.invocation(agent, request), tmp_path / "attempt"), tmp_path, env)
    return outcome, runner.interpret(agent, outcome)


def write_claude_config(home: Path, project: Path) -> None:
    """What `claude mcp add` writes: servers for the user (this server among them), for the project's local
    scope, and the project's .mcp.json; none of them is a working MCP server (`true` exits at once)."""
    home.mkdir(exist_ok=True)
    stdio = {"type": "stdio", "command": "true", "args": [], "env": {}}
    (home / ".claude.json").write_text(json.dumps({
        "mcpServers": {"github": stdio, "jira": {"type": "http", "url": "https://jira.example.com/mcp"},
                       "parallel-coordinator": {"type": "stdio", "command": "pcoord", "args": ["serve"]}},
        "projects": {str(project): {"mcpServers": {"notes": stdio}}},
    }))
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"team-db": stdio}}))


def test_the_real_cli_loads_only_the_mcp_servers_the_agent_names(claude: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    write_claude_config(tmp_path / "home", tmp_path)

    outcome, result = lean_run(claude, tmp_path, env, mcpServers=["github", "notes", {"inline": {"command": "true"}}])

    assert result.error is not None and result.error.startswith("Not logged in"), outcome.stderr_tail
    init = json.loads(outcome.stdout.splitlines()[0])
    assert sorted(server["name"] for server in init["mcp_servers"]) == ["github", "inline", "notes"]


def test_the_real_cli_loads_no_mcp_server_for_an_agent_that_names_none(claude: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    write_claude_config(tmp_path / "home", tmp_path)

    outcome, result = lean_run(claude, tmp_path, env)

    assert result.error is not None and result.error.startswith("Not logged in"), outcome.stderr_tail
    assert json.loads(outcome.stdout.splitlines()[0])["mcp_servers"] == []


@pytest.mark.parametrize("sources", [[], ["user", "project", "local"], "project"])
def test_the_real_cli_takes_every_setting_sources_value_we_pass(
    claude: Path, tmp_path: Path, sources: object
) -> None:
    outcome, result = lean_run(claude, tmp_path, clean_env(tmp_path / "home"), settingSources=sources)

    assert "setting-sources" not in outcome.stderr_tail and "error:" not in outcome.stderr_tail
    assert result.error is not None and result.error.startswith("Not logged in")


def test_a_setting_source_the_real_cli_does_not_know_fails_differently(claude: Path, tmp_path: Path) -> None:
    # What the CLI says to a bad value: the reason settingSources is checked before a run starts.
    proc = cli(claude, "-p", "--output-format", "stream-json", "--verbose", "--setting-sources", "policy",
               home=tmp_path / "home", stdin=b"hi")

    assert b"Invalid setting source: policy" in proc.stderr
    assert b"Not logged in" not in proc.stdout


# -- a loopback stub of the Messages API: the real CLI end to end, with nothing leaving the machine --


class _StubAPI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status: ClassVar[int] = 200
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        type(self).requests.append(body)
        if self.status != 200:
            kind = "overloaded_error" if self.status == 529 else "rate_limit_error"
            self._send_json(self.status, {"type": "error", "error": {"type": kind, "message": "Overloaded"}})
            return
        if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
            self._send_json(200, {"input_tokens": 10})
            return
        messages = body.get("messages") or [{}]
        last = messages[-1].get("content")
        answered = isinstance(last, list) and any(
            isinstance(c, dict) and c.get("type") == "tool_result" for c in last
        )
        tools = [t.get("name") for t in body.get("tools", [])]
        n = len(type(self).requests)
        if "Glob" in tools and not answered:
            blocks: list[dict[str, Any]] = [{"type": "tool_use", "id": f"toolu_{n}", "name": "Glob",
                                             "input": {"pattern": "*.md"}}]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": "STUB-ANSWER: one README."}]
            stop = "end_turn"
        self._send_stream(n, body.get("model", "stub"), blocks, stop)

    def _send_json(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, n: int, model: str, blocks: list[dict[str, Any]], stop: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        usage = {"input_tokens": 1000, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000,
                 "output_tokens": 1}

        def event(name: str, obj: dict[str, Any]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())

        event("message_start", {"type": "message_start", "message": {
            "id": f"msg_stub{n}", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}})
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {"type": "text", "text": ""}})
                event("content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "text_delta", "text": block["text"]}})
            else:
                event("content_block_start", {"type": "content_block_start", "index": i,
                                              "content_block": {**block, "input": {}}})
                event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
            event("content_block_stop", {"type": "content_block_stop", "index": i})
        delta = {"stop_reason": stop, "stop_sequence": None}
        event("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 20}})
        event("message_stop", {"type": "message_stop"})


def stub_api(status: int) -> contextlib.AbstractContextManager[tuple[str, list[dict[str, Any]]]]:
    return serving(_StubAPI, status)


def test_a_successful_real_run_reads_as_ok_with_tokens_and_tool_progress(
    claude: Path, tmp_path: Path
) -> None:
    (tmp_path / "README.md").write_text("# Readme\n")
    runner = ClaudeRunner(str(claude))
    with stub_api(200) as (url, requests):
        env = clean_env(tmp_path / "home", ANTHROPIC_API_KEY="sk-ant-test-not-a-key", ANTHROPIC_BASE_URL=url)
        outcome, progress = run(runner.invocation(AGENT, REQUEST), tmp_path, env)

    result = runner.interpret(AGENT, outcome)

    assert result.ok, result.error
    assert result.output == "STUB-ANSWER: one README."
    assert result.details["num_turns"] == 2
    assert result.input_tokens == 2 * (1000 + 200 + 3000)
    assert result.output_tokens == 2 * 20
    assert result.cost_usd is not None and result.cost_usd > 0
    assert "turn 1: Glob *.md" in [p.message for p in progress]
    # What reached the API: our system prompt appended, the prompt from stdin with its dependency output.
    first = requests[0]
    assert "You audit documentation." in json.dumps(first["system"])
    assert "DEPENDENCY-OUTPUT-MARKER" in json.dumps(first["messages"])
    assert "List the Markdown files." in json.dumps(first["messages"])


def test_a_real_run_against_an_overloaded_api_is_marked_rate_limited(claude: Path, tmp_path: Path) -> None:
    runner = ClaudeRunner(str(claude))
    with stub_api(529) as (url, _):
        env = clean_env(
            tmp_path / "home", ANTHROPIC_API_KEY="sk-ant-test-not-a-key", ANTHROPIC_BASE_URL=url,
            CLAUDE_CODE_MAX_RETRIES="1",
        )
        outcome, progress = run(runner.invocation(AGENT, REQUEST), tmp_path, env)

    result = runner.interpret(AGENT, outcome)

    assert result.ok is False
    assert result.rate_limited is True
    assert result.error is not None and "529" in result.error
    assert any((p.message or "").startswith("API retry 1/1 after 529 overloaded") for p in progress)


def test_a_lean_launch_leaves_the_projects_claude_md_and_the_machine_out_of_the_system_prompt(
    claude: Path, tmp_path: Path
) -> None:
    (tmp_path / "CLAUDE.md").write_text("PROJECT-MEMORY-MARKER: the project's long instructions\n")
    (tmp_path / "home" / ".claude").mkdir(parents=True)
    (tmp_path / "home" / ".claude" / "CLAUDE.md").write_text("USER-MEMORY-MARKER: be terse\n")
    with stub_api(200) as (url, requests):
        env = clean_env(tmp_path / "home", ANTHROPIC_API_KEY="sk-ant-test-not-a-key", ANTHROPIC_BASE_URL=url)
        lean, _ = lean_run(claude, tmp_path, env)
        lean_request = requests[-1]
        lean_run(claude, tmp_path, env, settingSources=["user", "project"])
        asked_for_more = requests[-1]

    assert lean.exit_code == 0, lean.stderr_tail
    system, messages = json.dumps(lean_request["system"]), json.dumps(lean_request["messages"])
    assert "USER-MEMORY-MARKER" in messages, "the user's settings (and so their CLAUDE.md) are kept"
    assert "PROJECT-MEMORY-MARKER" not in system + messages
    assert str(tmp_path) not in system, "the working directory moved out of the system prompt"
    assert str(tmp_path) in messages
    assert "PROJECT-MEMORY-MARKER" in json.dumps(asked_for_more["messages"]), "an agent file can ask for more"
