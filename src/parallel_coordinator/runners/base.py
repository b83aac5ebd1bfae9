"""The runner seam: what a runner is given, what it hands the supervisor, and what it makes of the outcome.

Plain dataclasses: `Invocation` and `AttemptOutcome` cross the process boundary to and from pool
workers, so they hold only picklable standard types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from parallel_coordinator.runners.streams import StreamKind
from parallel_coordinator.state.outputs import KeptOutput

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec


@dataclass(frozen=True)
class TaskRequest:
    """One attempt of one task, as the coordinator asks a runner to carry it out."""

    session_id: str
    task_id: str
    description: str
    task_description: str
    context: dict[str, str]  # each dependency's output, or its head when it is long (see context_files)
    working_directory: str | None = None
    timeout_s: float | None = None
    token_budget: int | None = None
    attempt: int = 1
    # Dependencies whose output is longer than what is handed inline: the file holding the whole text.
    context_files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunChoices:
    """What a runner may tailor a run to: the task's priority, the session's mode and budget, the model table."""

    task_priority: int = 3
    priority_mode: str = "speed"
    cost_budget_usd: float | None = None
    output_schema: dict[str, Any] | None = None  # the subtask's, for runners that can enforce one
    models: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation:
    """What to start: argv (never through a shell), extra environment, bytes for stdin, stream format."""

    argv: list[str]
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    stream: StreamKind = "command"
    # Files the run needs that must not travel in argv (readable by every local user in /proc/PID/cmdline):
    # written owner-only into the attempt's artefact folder, each `{file:NAME}` in argv replaced by its path.
    files: dict[str, bytes] = field(default_factory=dict)


EndReason = Literal["exited", "timeout", "stalled", "cancelled", "memory", "budget", "spawn_failed", "lost"]


@dataclass
class AttemptOutcome:
    """What the supervisor saw of one agent process, from start to reaped."""

    reason: EndReason
    exit_code: int | None = None
    stdout: str = ""
    stdout_truncated: bool = False
    stdout_bytes: int = 0  # everything the agent wrote to stdout, kept or not
    stdout_chars: int = 0  # the same, in characters (UTF-8, invalid bytes replaced)
    stderr_bytes: int = 0
    # Past the disk cap the artefact files stop growing: these say whether they were cut.
    stdout_cut_on_disk: bool = False
    stderr_cut_on_disk: bool = False
    stderr_tail: str = ""
    final_event: dict[str, Any] | None = None
    # What the stream reported as used, for runners whose stream reports usage: counted even for a run
    # stopped before its result (session budgets must not miss the tokens of a killed run).
    tokens_used: int | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    pid: int | None = None
    peak_rss_mb: float = 0.0
    killed_processes: int = 0
    error: str | None = None


@dataclass
class RunResult:
    """A runner's reading of an outcome: success or not, the output text, the error, and usage."""

    ok: bool
    output: str = ""
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    rate_limited: bool = False
    # False when running again cannot help (missing executable, no credentials): no retry, go to fallbacks.
    retryable: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    # Where the whole output already is, when it is not all in `output` (an agent's stdout artefact).
    kept: KeptOutput | None = None
    # Set by the engine's acceptance (engine/acceptance.py): the output validated against the subtask's
    # output_schema, and the signs that the run claimed work it did not do.
    output_json: Any = None
    flags: list[str] = field(default_factory=list)
    # Set by the engine's QA step (engine/quality.py): each check's verdict, as qa/verdicts.py CheckResult.as_dict.
    qa: list[dict[str, Any]] = field(default_factory=list)


class Runner(Protocol):
    """A way of running an agent. `invocation` may raise RunnerUnavailableError (missing executable, or an
    agent file asking for what is not there)."""

    kind: str
    # Secret-looking variables this runner's executable needs (environment.py): a `claude` run logs in with them.
    env_passthrough: tuple[str, ...]
    # True when the output is the agent's stdout as written (so its artefact file is the whole output).
    output_is_stdout: bool
    # True when the CLI itself holds its answer to a JSON Schema (RunChoices.output_schema); others are told it.
    enforces_schema: bool
    # True when small tasks of one agent may share one run (a burst): worth it where start-up is costly.
    batches: bool
    # Megabytes an agent of this runner is expected to need before one has been seen to run.
    default_memory_mb: float
    # True when its stream reports tokens as it goes, so a token budget can stop a run midway.
    counts_tokens: bool
    # True when runs of one agent share a prompt cache that the first writes: the rest wait for its answer.
    warms_prompt_cache: bool

    def for_run(self, agent: AgentSpec, choices: RunChoices) -> AgentSpec:
        """The agent as this one run needs it (a chosen model, budget flags); unchanged if nothing applies."""
        ...

    def invocation(self, agent: AgentSpec, request: TaskRequest) -> Invocation: ...

    def interpret(self, agent: AgentSpec, outcome: AttemptOutcome) -> RunResult: ...


def describe_exit(outcome: AttemptOutcome) -> str:
    """The error text for an outcome that did not end in exit status 0, naming status and last stderr."""
    tail = outcome.stderr_tail.strip()
    tail_text = f"; last stderr lines:\n{tail}" if tail else ""
    if outcome.reason != "exited":
        return (outcome.error or outcome.reason) + tail_text
    return f"exited with status {outcome.exit_code}{tail_text}"
