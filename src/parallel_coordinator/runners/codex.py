"""The `codex` runner: an agent file becomes a `codex exec --json` run (OpenAI Codex CLI), its JSONL a RunResult.

The prompt travels on stdin (`-` as the prompt), like the claude runner's: dependency outputs can be
larger than one argv string may be. Codex has no system-prompt flag; the agent's body goes in as
`developer_instructions`, which codex adds to its own instructions as a developer message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from parallel_coordinator.runners.agent_clis import (
    FailureTexts,
    access_of,
    chosen,
    find_executable,
    flag_on,
    model_of,
    system_prompt,
)
from parallel_coordinator.runners.base import (
    AttemptOutcome,
    Invocation,
    RunChoices,
    RunResult,
    TaskRequest,
    describe_exit,
)
from parallel_coordinator.runners.claude import build_prompt
from parallel_coordinator.runners.codex_stream import CodexStreamReader

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

CODEX_BIN_ENV = "PCOORD_CODEX_BIN"
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
INSTALL_HINT = (
    "install the Codex CLI with `npm install -g @openai/codex`, "
    f"or set {CODEX_BIN_ENV} to the path of a `codex` executable"
)
LOGIN_HINT = (
    "the codex CLI is not logged in: run `codex login` once (or `printenv OPENAI_API_KEY | codex login "
    "--with-api-key`), or set CODEX_API_KEY in the coordinator's environment"
)
UNTRUSTED_HINT = (
    "codex runs only in a git repository or a directory it trusts: run the task in a git repository "
    "(options.working_directory), trust the directory in codex, or drop `skipGitRepoCheck: false` "
    "from the agent file"
)
# Codex 0.169's own words (seen from the real CLI, logged out and against a loopback API stub).
FAILURES = FailureTexts(
    login=(
        r"\b401 Unauthorized", r"Missing environment variable: `", r"no Codex credentials", r"^Not logged in",
        r"Please log out and sign in again", r"access token could not be refreshed",
    ),
    untrusted=(r"Not inside a trusted directory",),
    rate_limit=(r"\b429\b", r"Too Many Requests", r"hit your usage limit", r"Quota exceeded", r"rate.?limit"),
)


def find_codex(environ: Mapping[str, str] | None = None) -> str:
    """The `codex` executable: `PCOORD_CODEX_BIN` if set, else `codex` on PATH."""
    return find_executable("codex", CODEX_BIN_ENV, INSTALL_HINT, environ)


def toml_string(text: str) -> str:
    """`text` as a TOML multi-line basic string, the form `-c key=value` parses without surprises."""
    escaped = []
    for char in text:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char in ("\n", "\t"):
            escaped.append(char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"""' + "".join(escaped) + '"""'


def sandbox_of(agent: AgentSpec) -> str:
    """The agent file's `sandbox`, else read-only for an agent whose tools only read, else workspace-write."""
    explicit = chosen(agent, "sandbox", SANDBOX_MODES)
    if explicit is not None:
        return explicit
    return "read-only" if access_of(agent) == "read" else "workspace-write"


class CodexRunner:
    """Runs an agent as `codex exec --json --skip-git-repo-check -s SANDBOX [-C DIR] [-m MODEL] -`.

    Front matter maps onto flags: `model` (omitted for `inherit`), `sandbox` (codex's own mode) or else
    `tools` (read-only when they only read, workspace-write when they edit or run commands), the body
    as `-c developer_instructions=...`. `--skip-git-repo-check` is passed unless the agent file says
    `skipGitRepoCheck: false`: the working directory is the caller's explicit choice, a headless run
    has no one to ask, and inside a git repository the flag changes nothing. Codex has no budget flag:
    its stream reports usage once, when the turn completes, which the session's budgets count.
    """

    kind = "codex"
    # What codex logs in with (OPENAI_API_KEY, CODEX_API_KEY, CODEX_HOME's auth.json) and its settings.
    env_passthrough: tuple[str, ...] = ("OPENAI_*", "CODEX_*")
    output_is_stdout = False  # stdout is the event stream; the output is its last agent message
    batches = True  # each run pays the CLI's start-up and instructions: small tasks share one
    default_memory_mb = 200.0  # a run on a loopback API stub peaked at 147 MB (0.169); its commands come on top
    counts_tokens = True  # its usage reaches the supervisor (at the end of the turn) and the session's budget
    warms_prompt_cache = False  # the provider caches its own way; a held start would only delay the rest
    enforces_schema = False  # validated after the run (its --output-schema takes a file: not wired yet)

    def __init__(self, executable: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self.executable = executable
        self._environ = environ

    def for_run(self, agent: AgentSpec, choices: RunChoices) -> AgentSpec:
        return agent  # the model table names Claude models; a codex agent names its own or takes codex's

    def invocation(self, agent: AgentSpec, request: TaskRequest) -> Invocation:
        executable = self.executable or find_codex(self._environ)
        argv = [executable, "exec", "--json"]
        if flag_on(agent, "skipGitRepoCheck"):
            argv.append("--skip-git-repo-check")
        argv += ["-s", sandbox_of(agent)]
        if request.working_directory:
            argv += ["-C", request.working_directory]
        model = model_of(agent)
        if model:
            argv += ["-m", model]
        instructions = system_prompt(agent)
        if instructions:
            argv += ["-c", f"developer_instructions={toml_string(instructions)}"]
        argv.append("-")  # the prompt is on stdin
        return Invocation(argv=argv, stdin=build_prompt(request).encode("utf-8"), stream="codex")

    def interpret(self, agent: AgentSpec, outcome: AttemptOutcome) -> RunResult:
        summary = outcome.final_event or _replay(outcome.stdout) or {}
        usage: dict[str, Any] = summary.get("usage") or {}
        details: dict[str, Any] = {
            key: summary.get(key)
            for key in ("thread_id", "turns", "tool_uses", "tools_used", "files_changed", "warnings", "reconnects",
                        "last_reconnect", "usage")
        }
        failure = FAILURES.classify("\n".join(_failure_texts(summary, outcome)))
        finished = summary.get("completed") and not summary.get("failure")
        # The stream's own word counts always; limit words in a log count only for a run that did not finish.
        rate_limited = bool(summary.get("rate_limited")) or (failure == "rate_limit" and not finished)
        accounting: dict[str, Any] = {
            "input_tokens": _int(usage.get("input_tokens")), "output_tokens": _int(usage.get("output_tokens")),
            "rate_limited": rate_limited, "details": details,
        }
        if finished and (outcome.reason == "budget" or (outcome.reason == "exited" and outcome.exit_code == 0)):
            if outcome.reason == "budget":  # the usage arrives with the turn's end: the work was done
                details["token_budget_passed"] = True
            text = summary.get("final_text")
            return RunResult(ok=True, output=text if isinstance(text, str) else "", **accounting)

        error = _error_text(summary, outcome)
        retryable = True
        if failure == "login":
            error, retryable = f"{error} ({LOGIN_HINT})", False
        elif failure == "untrusted":
            error, retryable = f"{error} ({UNTRUSTED_HINT})", False
        partial = summary.get("last_text")
        return RunResult(
            ok=False, output=partial if isinstance(partial, str) else "", error=error, retryable=retryable,
            **accounting,
        )


def _failure_texts(summary: dict[str, Any], outcome: AttemptOutcome) -> list[str]:
    """Where codex says why it failed: turn.failed, fatal error events, and stderr (where refusals go)."""
    texts = [str(summary.get("failure") or ""), *map(str, summary.get("errors") or []), outcome.stderr_tail]
    return [text for text in texts if text]


def _error_text(summary: dict[str, Any], outcome: AttemptOutcome) -> str:
    failure = summary.get("failure")
    if outcome.reason == "exited" and isinstance(failure, str) and failure:
        return failure
    error = describe_exit(outcome)
    if outcome.reason == "exited" and outcome.exit_code == 0:
        error += " without a turn.completed event (is this executable the Codex CLI?)"
    if summary.get("reconnects"):
        error += f" (codex was reconnecting: {summary['reconnects']} times, last: {summary.get('last_reconnect')})"
    return error


def _replay(stdout: str) -> dict[str, Any] | None:
    # The supervisor normally hands us the reader's summary; without it, read the stdout we have.
    reader = CodexStreamReader()
    for line in stdout.splitlines():
        reader.on_stdout_line(line)
    return reader.final_event()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
