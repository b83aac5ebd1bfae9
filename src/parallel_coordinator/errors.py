"""The exception tree. Every error says what was wrong, with the offending value, and how to fix it.

    CoordinatorError                 root; catch this to catch everything we raise on purpose
    ├── PlanError                    a coordinate_task input that cannot run
    │   ├── UnknownAgentError        a subtask names an agent that does not exist
    │   ├── UnknownDependencyError   a subtask depends on an id that is not in the plan
    │   ├── DuplicateTaskError       two subtasks share an id
    │   ├── CycleError               the dependencies form a cycle (carries the cycle)
    │   └── ApprovalRequiredError    the plan's forecast is over the approval threshold and was not approved
    ├── UnknownSessionError          no session with that id
    ├── UnknownArgumentError         a tool call passes an argument the tool does not take
    ├── AgentFileError               an agent file that cannot be used (becomes a diagnostic)
    ├── ConfigError                  a configuration file or PCOORD_* variable that cannot be used
    ├── RunnerUnavailableError       a runner cannot start an agent: no executable, or the agent file asks for
    │                                what is not there (becomes a task error, not retried)
    ├── WorktreeError                a task's git worktree could not be made, summarized or removed
    ├── WorkerLostError              the pool worker (or Dask worker) running an attempt died
    └── EngineNotStartedError        the Coordinator was used before `async with` entered it
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class CoordinatorError(Exception):
    """Root of every error Parallel Coordinator raises on purpose."""


class PlanError(CoordinatorError):
    """The plan handed to coordinate_task cannot run as given."""


def shortened(value: str, keep: int = 40) -> str:
    """Caller input quoted in an error: whole when short, else its start and its length (a 100,000-character
    id must not come back whole)."""
    if len(value) <= keep:
        return repr(value)
    return f"{value[:keep]!r}... ({len(value):,} characters)"


def _closest(name: str, known: Iterable[str]) -> str | None:
    known = list(known)
    # A plugin's agent is PLUGIN:AGENT: the bare AGENT (or a near miss of it) points at it, however long PLUGIN is.
    by_last_part = {entry.rpartition(":")[2]: entry for entry in sorted(known, reverse=True) if ":" in entry}
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close and by_last_part and ":" not in name:
        bare = difflib.get_close_matches(name, list(by_last_part), n=1, cutoff=0.6)
        close = [by_last_part[bare[0]]] if bare else []
    return close[0] if close else None


def _suggestion(name: str, known: Iterable[str]) -> str:
    close = _closest(name, known)
    return f"; did you mean {close!r}?" if close else ""


class UnknownAgentError(PlanError):
    def __init__(self, agent: str, task_id: str, known: Iterable[str]) -> None:
        known = sorted(known)
        hint = _suggestion(agent, known) or (
            f"; known agents: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}"
            if known
            else "; no agents were found (run `pcoord agents` to see where they are looked for)"
        )
        super().__init__(f"unknown agent {agent!r} in task {task_id!r}{hint}")
        self.agent = agent
        self.task_id = task_id


class UnknownDependencyError(PlanError):
    def __init__(self, dependency: str, task_id: str, known: Iterable[str]) -> None:
        super().__init__(
            f"task {task_id!r} depends on {dependency!r}, which is not a task in this plan"
            f"{_suggestion(dependency, known)}"
        )
        self.dependency = dependency
        self.task_id = task_id


class DuplicateTaskError(PlanError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"duplicate task id {task_id!r}: every subtask needs its own id")
        self.task_id = task_id


class ApprovalRequiredError(PlanError):
    """Nothing ran: the forecast needs the caller's approval first (it carries the forecast)."""

    def __init__(self, forecast_text: str, usd: float, threshold_usd: float) -> None:
        super().__init__(
            f"not started: the forecast is {forecast_text}, over the approval threshold of ${threshold_usd:g};"
            " nothing ran. To run it, call again with options.approved=true (in a plan file: `approved: true`"
            " under options), or raise options.approval_threshold_usd"
        )
        self.usd = usd
        self.threshold_usd = threshold_usd


class CycleError(PlanError):
    def __init__(self, cycle: Sequence[str]) -> None:
        path = " -> ".join([*cycle, cycle[0]])
        if len(cycle) == 1:
            message = f"task {cycle[0]!r} depends on itself ({path}); remove it from its own dependencies"
        else:
            message = f"the dependencies form a cycle: {path}; remove one of these dependencies"
        super().__init__(message)
        self.cycle = list(cycle)


class UnknownSessionError(CoordinatorError):
    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"unknown session {shortened(session_id)}; use the session_id that coordinate_task returned"
        )
        self.session_id = session_id


class UnknownArgumentError(CoordinatorError):
    """A tool call with an argument the tool does not take: an ignored `subtask` would silently drop the plan."""

    def __init__(self, tool: str, unknown: Sequence[str], known: Sequence[str]) -> None:
        shown = unknown[:5]  # a call may carry thousands of stray names: five say enough
        if len(shown) == 1:
            named = f"unknown argument {shortened(shown[0])}{_suggestion(shown[0], known)}"
        else:
            parts = [shortened(name) + (f" (did you mean {close!r}?)" if (close := _closest(name, known)) else "")
                     for name in shown]
            named = f"unknown arguments {', '.join(parts)}{' ...' if len(unknown) > len(shown) else ''}"
        super().__init__(f"{named} ({tool} takes {', '.join(known) or 'no arguments'})")
        self.tool = tool
        self.unknown = list(unknown)


class AgentFileError(CoordinatorError):
    """An agent file that cannot be used; discovery turns it into a diagnostic, never a crash."""


class ConfigError(CoordinatorError):
    """A configuration file or PCOORD_* environment variable that cannot be used; the message says where."""


class RunnerUnavailableError(CoordinatorError):
    """A runner cannot start (its executable is missing); the attempt fails with this text."""


class WorktreeError(CoordinatorError):
    """A worktree could not be created, summarized or removed; the message carries git's own words."""


class WorkerLostError(CoordinatorError):
    """The process or machine running an attempt's supervisor died; each backend maps its own failures to this."""


class EngineNotStartedError(CoordinatorError):
    """The Coordinator was used before it was entered."""

    def __init__(self) -> None:
        super().__init__(
            "the Coordinator is not running: use it as an async context manager (`async with Coordinator(...)`)"
        )


def first_line(text: str | None, limit: int = 200) -> str:
    """An error's first line; one ending in a colon ("...; last stderr lines:") gets the last line after it.

    The last stderr line is where the cause usually is (an exception, a `sys.exit` message).
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    if line.endswith(":") and len(lines) > 1:
        line = f"{line} {'… ' if len(lines) > 2 else ''}{lines[-1]}"
    return line if len(line) <= limit else line[: limit - 1] + "…"
