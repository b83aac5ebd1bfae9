"""The `claude` runner: an agent file becomes a headless `claude -p` run, its stream-json a RunResult.

The prompt travels on stdin: one argv string is capped at 128 KiB on Linux, and dependency
outputs can be larger than that.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import (
    AttemptOutcome,
    Invocation,
    RunChoices,
    RunResult,
    TaskRequest,
    describe_exit,
)
from parallel_coordinator.runners.claude_lean import agent_cwd, lean_flags
from parallel_coordinator.runners.claude_stream import SUMMARY_KEY, ClaudeStreamReader, result_error_text
from parallel_coordinator.runners.models import choose_model

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

CLAUDE_BIN_ENV = "PCOORD_CLAUDE_BIN"
DEFAULT_MAX_TURNS = 50
INSTALL_HINT = (
    "install Claude Code with `npm install -g @anthropic-ai/claude-code`, "
    f"or set {CLAUDE_BIN_ENV} to the path of a `claude` executable"
)
LOGIN_HINT = (
    "the claude CLI has no credentials: run `claude` once and /login, "
    "or set ANTHROPIC_API_KEY in the coordinator's environment"
)


def find_claude(environ: Mapping[str, str] | None = None) -> str:
    """The `claude` executable: `PCOORD_CLAUDE_BIN` if set, else `claude` on PATH."""
    env = os.environ if environ is None else environ
    configured = env.get(CLAUDE_BIN_ENV, "").strip()
    if configured:
        found = shutil.which(configured, path=env.get("PATH"))
        if found is None:
            raise RunnerUnavailableError(
                f"{CLAUDE_BIN_ENV}={configured!r} is not an executable file; point it at the "
                "`claude` executable (e.g. the output of `command -v claude`) or unset it"
            )
        return found
    found = shutil.which("claude", path=env.get("PATH"))
    if found is None:
        raise RunnerUnavailableError(f"the `claude` executable was not found on PATH; {INSTALL_HINT}")
    return found


def protocol_text(agent: AgentSpec) -> str:
    """The agent directory's `system/PROTOCOL.md`, which every claude agent from there must follow."""
    if agent.root is None:
        return ""
    protocol = agent.root / "system" / "PROTOCOL.md"
    try:
        return protocol.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def build_prompt(request: TaskRequest) -> str:
    """The user prompt: the subtask first, then the overall task, then each dependency's output."""
    parts = [request.description.strip()]
    overall = request.task_description.strip()
    if overall and overall != parts[0]:
        parts.append(
            "## Overall task (for orientation: do only the subtask above)\n\n" + overall
        )
    if request.context:
        parts.append(
            "## Results of the tasks this one depends on\n\n"
            + "\n\n".join(
                f"### Output of task `{task_id}`\n\n{_context_note(request, task_id)}{output.strip() or '(no output)'}"
                for task_id, output in request.context.items()
            )
        )
    return "\n\n".join(parts) + "\n"


def _context_note(request: TaskRequest, task_id: str) -> str:
    path = request.context_files.get(task_id)
    if path is None:
        return ""
    return f"(This is only the beginning of a long output; the whole text is in the file `{path}`.)\n\n"


def _tool_names(entries: list[str]) -> list[str]:
    # `--tools` takes bare built-in names: "Bash(git *)" would silently drop Bash.
    names = [entry.split("(", 1)[0].strip() for entry in entries]
    return list(dict.fromkeys(name for name in names if name))


class ClaudeRunner:
    """Runs an agent as `claude -p --output-format stream-json --verbose`, the body as system prompt.

    Front matter maps onto flags: `model` (omitted for `inherit`), `tools` (`--tools` limits the
    built-in tools offered, as Claude Code does for subagents, and `--allowedTools` pre-approves
    them, since a headless run has no one to ask), `disallowedTools`, and from the extra keys
    `permissionMode`, `maxTurns` and `effort`. The launch is lean (claude_lean.py): only the MCP
    servers of `mcpServers`, never this server, and the setting sources of `settingSources`.
    `rate_limited` is set whenever a 429 or 529 was seen, even in a run that then succeeded after
    retrying, so the caller can slow down; a rate-limited run's `details["retry_after_s"]` is the wait
    its stream asked for (`asked_wait_s`), or None when it named none.
    """

    kind = "claude"
    # What Claude Code logs in with (API key, OAuth token) and its own settings; nothing else secret.
    env_passthrough: tuple[str, ...] = ("ANTHROPIC_*", "CLAUDE_*")
    output_is_stdout = False  # stdout is the event stream; the output is its result event's text
    batches = True  # each run pays Claude Code's start-up and system prompt: small tasks share one
    default_memory_mb = 400.0  # a Claude Code process holds 0.4 to 1.2 GB (NOTES.md)
    counts_tokens = True  # the stream's usage figures let the supervisor stop a run at its token budget
    warms_prompt_cache = True  # one system prompt per agent: the API caches it for the agent's other runs
    enforces_schema = True  # --json-schema: the CLI holds the answer to it and returns structured_output

    def __init__(
        self,
        executable: str | None = None,
        *,
        max_turns: int = DEFAULT_MAX_TURNS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self.executable = executable
        self.max_turns = max_turns
        self._environ = environ

    def for_run(self, agent: AgentSpec, choices: RunChoices) -> AgentSpec:
        """A model chosen for agents that leave it open, and the session's dollar budget as --max-budget-usd."""
        extra = dict(agent.extra)
        if choices.cost_budget_usd is not None:
            extra["maxBudgetUsd"] = choices.cost_budget_usd
        if choices.output_schema is not None:
            extra["jsonSchema"] = choices.output_schema
        model = choose_model(agent, choices.task_priority, choices.models, choices.priority_mode)
        return agent.model_copy(update={"model": model, "extra": extra})

    def invocation(self, agent: AgentSpec, request: TaskRequest) -> Invocation:
        executable = self.executable or find_claude(self._environ)
        argv = [executable, "-p", "--output-format", "stream-json", "--verbose"]
        system_prompt = "\n\n".join(part for part in (agent.body.strip(), protocol_text(agent)) if part)
        if system_prompt:
            argv += ["--append-system-prompt", system_prompt]
        schema = agent.extra.get("jsonSchema")
        if isinstance(schema, dict):
            argv += ["--json-schema", json.dumps(schema)]
        if agent.model and agent.model.strip().lower() != "inherit":
            argv += ["--model", agent.model.strip()]
        if agent.tools is not None:
            argv += ["--tools", ",".join(_tool_names(agent.tools))]
            if agent.tools:
                argv += ["--allowedTools", ",".join(agent.tools)]
        if agent.disallowed_tools:
            argv += ["--disallowedTools", ",".join(agent.disallowed_tools)]
        environ = os.environ if self._environ is None else self._environ
        flags, files = lean_flags(agent, environ, agent_cwd(request.working_directory))
        argv += flags
        argv += ["--max-turns", str(self._max_turns_for(agent))]
        budget = agent.extra.get("maxBudgetUsd")
        if isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0:
            argv += ["--max-budget-usd", f"{budget:g}"]
        permission_mode = agent.extra.get("permissionMode")
        if isinstance(permission_mode, str) and permission_mode.strip():
            argv += ["--permission-mode", permission_mode.strip()]
        effort = agent.extra.get("effort")
        if isinstance(effort, str) and effort.strip():
            argv += ["--effort", effort.strip()]
        return Invocation(argv=argv, stdin=build_prompt(request).encode("utf-8"), stream="claude", files=files)

    def interpret(self, agent: AgentSpec, outcome: AttemptOutcome) -> RunResult:
        final = outcome.final_event
        if final is None and outcome.stdout:
            final = _replay(outcome.stdout)
        summary: dict[str, Any] = dict((final or {}).get(SUMMARY_KEY) or {})
        result = final if final is not None and final.get("type") == "result" else None

        rate_limited = bool(summary.get("rate_limited") or summary.get("overloaded"))
        details: dict[str, Any] = {
            "turns_seen": summary.get("turns", 0),
            "tool_uses": summary.get("tool_uses", 0),
            "tools_used": summary.get("tools_used", {}),
            "api_retries": summary.get("api_retries", 0),
            "last_api_error": summary.get("last_api_error"),
            "rate_limit_info": summary.get("rate_limit_info"),
            "session_id": summary.get("session_id"),
            "model": summary.get("model"),
            # The first turn's prompt tokens (uncached, cache writes, cache reads): what the run cost to start.
            "prefix": summary.get("prefix"),
        }
        input_tokens = output_tokens = None
        cost_usd = None
        is_error = True
        if result is not None:
            raw_usage = result.get("usage")
            usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
            input_tokens = _input_tokens(usage)
            output_tokens = _int(usage.get("output_tokens"))
            cost = result.get("total_cost_usd")
            cost_usd = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None
            status = result.get("api_error_status")
            rate_limited = rate_limited or status in (429, 529)
            is_error = bool(result.get("is_error")) or str(result.get("subtype", "")).startswith("error")
            details.update(
                subtype=result.get("subtype"),
                terminal_reason=result.get("terminal_reason"),
                num_turns=result.get("num_turns"),
                duration_ms=result.get("duration_ms"),
                duration_api_ms=result.get("duration_api_ms"),
                session_id=result.get("session_id") or details["session_id"],
                usage=usage,
                model_usage=result.get("modelUsage") or {},
                api_error_status=status,
                permission_denials=result.get("permission_denials") or [],
                structured_output=result.get("structured_output"),
            )

        details["retry_after_s"] = asked_wait_s(summary, time.time()) if rate_limited else None
        # What every reading of the run carries, whether it succeeded or not.
        accounting: dict[str, Any] = {
            "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost_usd,
            "rate_limited": rate_limited, "details": details,
        }
        exited_cleanly = outcome.reason == "exited" and outcome.exit_code == 0
        if exited_cleanly and result is not None and not is_error:
            text = result.get("result")
            return RunResult(ok=True, output=text if isinstance(text, str) else "", **accounting)

        retryable = True
        if result is not None and is_error and outcome.reason == "exited":
            error = result_error_text(result)
            if "authentication_failed" in summary.get("api_errors", ()):
                error = f"{error} ({LOGIN_HINT})"
                retryable = False
        else:
            error = describe_exit(outcome)
            if exited_cleanly:
                error += " without a stream-json result event (is this executable Claude Code?)"
            if summary.get("api_retries"):
                error += (
                    f" (the API was being retried: {summary['api_retries']} retries, "
                    f"last after {summary.get('last_api_error')})"
                )
        # Whatever the agent wrote before it failed is kept: a retry or a fallback may use it.
        partial = summary.get("last_text")
        return RunResult(
            ok=False, output=partial if isinstance(partial, str) else "", error=error, retryable=retryable,
            **accounting,
        )

    def _max_turns_for(self, agent: AgentSpec) -> int:
        value = agent.extra.get("maxTurns")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) >= 1:
            return int(value)
        return self.max_turns


def asked_wait_s(summary: Mapping[str, Any], now: float) -> float | None:
    """Seconds the stream asked for before the next run, None if it named none.

    Claude Code 2.1.330 names a wait in two places (its result event has none): each `api_retry`
    line's `retry_delay_ms`, the wait before its own next try (the API's Retry-After when that is
    longer than its backoff), and a rejected `rate_limit_event`'s `resetsAt`, when a subscription's
    window opens again. The later of the last of each: a run that gave up waited out the last delay
    once already, and the limit it hit may be the window's. A reset already past names no wait.
    """
    waits = []
    delay_ms = summary.get("retry_delay_ms")
    if isinstance(delay_ms, int | float) and not isinstance(delay_ms, bool):
        waits.append(delay_ms / 1000)
    until = summary.get("rejected_until")
    if isinstance(until, int | float) and not isinstance(until, bool):
        waits.append(until - now)
    longest = max(waits, default=0.0)
    return longest if longest > 0 else None


def _replay(stdout: str) -> dict[str, Any] | None:
    # The supervisor normally hands us the reader's final event; without it, read the stdout we have.
    reader = ClaudeStreamReader()
    for line in stdout.splitlines():
        reader.on_stdout_line(line)
    return reader.final_event()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _input_tokens(usage: Mapping[str, Any]) -> int | None:
    """Every prompt token the model read, cached or not (the split stays in details["usage"])."""
    parts = [
        _int(usage.get(key))
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None
