"""The `gemini` runner: an agent file becomes a headless `gemini -p` run (Gemini CLI), its stream-json a RunResult.

The prompt travels on stdin (the CLI puts piped input before `-p`'s text, here empty). Gemini's only
system-prompt override, GEMINI_SYSTEM_MD, replaces its whole built-in prompt (how to use its tools,
its safety rules) with a file: so the agent's body opens the prompt instead, as the role to take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from parallel_coordinator.runners.agent_clis import (
    Access,
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
from parallel_coordinator.runners.gemini_stream import GeminiStreamReader

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

GEMINI_BIN_ENV = "PCOORD_GEMINI_BIN"
APPROVAL_MODES = ("default", "auto_edit", "yolo", "plan")
# Headless, "default" runs only the tools that need no approval (they read); auto_edit adds file edits.
_MODE_FOR: dict[Access, str] = {"read": "default", "edit": "auto_edit", "all": "yolo"}
INSTALL_HINT = (
    "install the Gemini CLI with `npm install -g @google/gemini-cli`, "
    f"or set {GEMINI_BIN_ENV} to the path of a `gemini` executable"
)
LOGIN_HINT = (
    "the gemini CLI has no auth method: set GEMINI_API_KEY (or GOOGLE_GENAI_USE_VERTEXAI or "
    "GOOGLE_GENAI_USE_GCA, with what they need) in the coordinator's environment, or run `gemini` once "
    "and choose how to sign in"
)
UNTRUSTED_HINT = (
    "gemini does not trust the working directory: drop `skipTrust: false` from the agent file, set "
    "GEMINI_CLI_TRUST_WORKSPACE=true, or trust the folder in gemini"
)
# Gemini CLI 0.61's own words (seen from the real CLI, logged out and against a loopback API stub).
FAILURES = FailureTexts(
    login=(
        r"Please set an Auth method", r"Invalid auth method selected", r"must specify the GEMINI_API_KEY",
        r"API key not valid", r"FatalAuthenticationError", r"\bUNAUTHENTICATED\b",
    ),
    untrusted=(r"not running in a trusted directory", r"FatalUntrustedWorkspaceError"),
    rate_limit=(r"\b429\b", r"RESOURCE_EXHAUSTED", r"quota", r"rate.?limit", r"QuotaError"),
)
# The CLI's exit statuses for them (FatalAuthenticationError 41, FatalUntrustedWorkspaceError 55).
_EXIT_LOGIN, _EXIT_UNTRUSTED = 41, 55


def find_gemini(environ: Mapping[str, str] | None = None) -> str:
    """The `gemini` executable: `PCOORD_GEMINI_BIN` if set, else `gemini` on PATH."""
    return find_executable("gemini", GEMINI_BIN_ENV, INSTALL_HINT, environ)


def approval_mode_of(agent: AgentSpec) -> str:
    """The agent file's `approvalMode`, else what its `tools` allow: read (default), edit (auto_edit), all (yolo)."""
    return chosen(agent, "approvalMode", APPROVAL_MODES) or _MODE_FOR[access_of(agent)]


def gemini_prompt(agent: AgentSpec, request: TaskRequest) -> str:
    """The agent's body as the role to take, then the task as every runner words it."""
    role = system_prompt(agent)
    task = build_prompt(request)
    return f"## Your role (follow it throughout)\n\n{role}\n\n## Your task\n\n{task}" if role else task


class GeminiRunner:
    """Runs an agent as `gemini -p "" -o stream-json --skip-trust --approval-mode MODE [-m MODEL]`.

    Front matter maps onto flags: `model` (omitted for `inherit`), `approvalMode` (gemini's own) or
    else `tools`. The working directory is the process's (gemini has no flag for it). `--skip-trust`
    is passed unless the agent file says `skipTrust: false`, for the reason the codex runner skips
    its git check: the caller chose the directory, and a headless run has no one to ask. Gemini has
    no budget flag: its result reports the run's tokens, which the session's budgets count.
    """

    kind = "gemini"
    # What gemini logs in with (GEMINI_API_KEY, GOOGLE_API_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...).
    # What the Gemini CLI logs in with (an API key, Vertex AI's project and credentials), not every GOOGLE_ secret.
    env_passthrough: tuple[str, ...] = (
        "GEMINI_*", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_*", "GOOGLE_GENAI_*",
    )
    output_is_stdout = False  # stdout is the event stream; the output is its assistant text
    batches = True  # each run pays a Node start-up of seconds: small tasks share one
    default_memory_mb = 300.0  # a Node process: a run on a loopback API stub peaked at 253 MB (0.61)
    counts_tokens = True  # its usage reaches the supervisor (with the result) and the session's budget
    warms_prompt_cache = False  # the provider caches its own way; a held start would only delay the rest
    enforces_schema = False  # validated after the run

    def __init__(self, executable: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self.executable = executable
        self._environ = environ

    def for_run(self, agent: AgentSpec, choices: RunChoices) -> AgentSpec:
        return agent  # the model table names Claude models; a gemini agent names its own or takes gemini's

    def invocation(self, agent: AgentSpec, request: TaskRequest) -> Invocation:
        executable = self.executable or find_gemini(self._environ)
        argv = [executable, "-p", "", "-o", "stream-json"]
        if flag_on(agent, "skipTrust"):
            argv.append("--skip-trust")
        argv += ["--approval-mode", approval_mode_of(agent)]
        model = model_of(agent)
        if model:
            argv += ["-m", model]
        return Invocation(argv=argv, stdin=gemini_prompt(agent, request).encode("utf-8"), stream="gemini")

    def interpret(self, agent: AgentSpec, outcome: AttemptOutcome) -> RunResult:
        summary = outcome.final_event or _replay(outcome.stdout) or {}
        result: dict[str, Any] = summary.get("result") or {}
        raw_stats = result.get("stats")
        stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
        input_tokens, output_tokens = _tokens(stats)
        details: dict[str, Any] = {
            key: summary.get(key)
            for key in ("session_id", "model", "tool_uses", "tools_used", "tool_errors", "warnings", "answer_cut")
        }
        details["stats"] = stats
        failure = FAILURES.classify("\n".join(_failure_texts(result, outcome)))
        if outcome.reason == "exited" and outcome.exit_code in (_EXIT_LOGIN, _EXIT_UNTRUSTED) and failure is None:
            failure = "login" if outcome.exit_code == _EXIT_LOGIN else "untrusted"
        finished = result.get("status") == "success"
        # The stream's own word counts always; limit words in a log count only for a run that did not finish.
        rate_limited = bool(summary.get("rate_limited")) or (failure == "rate_limit" and not finished)
        accounting: dict[str, Any] = {
            "input_tokens": input_tokens, "output_tokens": output_tokens, "rate_limited": rate_limited,
            "details": details,
        }
        answer = summary.get("answer")
        answer = answer if isinstance(answer, str) else ""
        if finished and (outcome.reason == "budget" or (outcome.reason == "exited" and outcome.exit_code == 0)):
            if outcome.reason == "budget":  # the usage arrives with the result: the work was done
                details["token_budget_passed"] = True
            return RunResult(ok=True, output=answer, **accounting)

        error = _error_text(result, outcome)
        retryable = True
        if failure == "login":
            error, retryable = f"{error} ({LOGIN_HINT})", False
        elif failure == "untrusted":
            error, retryable = f"{error} ({UNTRUSTED_HINT})", False
        partial = answer or summary.get("last_text")
        return RunResult(
            ok=False, output=partial if isinstance(partial, str) else "", error=error, retryable=retryable,
            **accounting,
        )


def _tokens(stats: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Prompt tokens (cached included), and every other token of the run (answer, thoughts, tool use)."""
    prompt, answer, total = (_int(stats.get(key)) for key in ("input_tokens", "output_tokens", "total_tokens"))
    if prompt is not None and total is not None and total >= prompt:
        return prompt, max(total - prompt, answer or 0)
    return prompt, answer


def _failure_texts(result: Mapping[str, Any], outcome: AttemptOutcome) -> list[str]:
    """Where gemini says why it failed: its result's error (type and message), and stderr."""
    error = result.get("error")
    texts = [f"{error.get('type')}: {error.get('message')}"] if isinstance(error, dict) else []
    return [*texts, outcome.stderr_tail] if outcome.stderr_tail else texts


def _error_text(result: Mapping[str, Any], outcome: AttemptOutcome) -> str:
    error = result.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if outcome.reason == "exited" and isinstance(message, str) and message.strip():
        return message.strip()
    text = describe_exit(outcome)
    if outcome.reason == "exited" and outcome.exit_code == 0:
        text += " without a stream-json result event (is this executable the Gemini CLI?)"
    return text


def _replay(stdout: str) -> dict[str, Any] | None:
    # The supervisor normally hands us the reader's summary; without it, read the stdout we have.
    reader = GeminiStreamReader()
    for line in stdout.splitlines():
        reader.on_stdout_line(line)
    return reader.final_event()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
