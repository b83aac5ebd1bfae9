"""A session's live state: its graph, its scheduler, and one record per task, while it runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio

from parallel_coordinator.engine.budget import Spend
from parallel_coordinator.engine.policy import SessionPolicy
from parallel_coordinator.engine.warmup import PromptWarmup
from parallel_coordinator.planning.graph import TaskGraph
from parallel_coordinator.planning.scheduler import Scheduler, TaskState
from parallel_coordinator.state.outputs import KeptOutput

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec
    from parallel_coordinator.planning.forecast import Forecast
    from parallel_coordinator.runners.base import RunResult

# How soon a wait that has no event to wake it (CPU, memory, a rate limit, a stop) is looked at again.
RECHECK_S = 0.5

SessionStatus = Literal["RUNNING", "SUCCESS", "PARTIAL", "FAILED", "CANCELLED"]


@dataclass
class AttemptInfo:
    number: int
    agent: str
    started_at: float
    finished_at: float | None = None
    exit_code: int | None = None
    outcome: str = "running"
    error: str | None = None
    prefix: dict[str, int] | None = None  # the first turn's prompt tokens, when the runner reports them


@dataclass
class TaskRecord:
    task_id: str
    agent: str
    status: TaskState = TaskState.PENDING
    output: str = ""  # the head of the output (outputs.py): at most INLINE_CHARS
    output_chars: int = 0  # the whole output's length
    output_path: str | None = None  # the file with the whole text, when `output` is not all of it
    output_cut: bool = False  # that file was cut at the disk cap
    error: str | None = None
    attempts: list[AttemptInfo] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    progress: float | None = None
    message: str | None = None
    pid: int | None = None
    attempt_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    worktree: dict[str, object] | None = None
    waiting_for: str | None = None  # an identical task whose result this one will reuse
    output_json: Any = None  # the output validated against the subtask's output_schema
    flags: list[str] = field(default_factory=list)  # signs it claimed work it did not do (acceptance.py)
    feedback: str | None = None  # why its last attempt was not accepted, for the next one
    qa: list[dict[str, Any]] = field(default_factory=list)  # its last attempt's QA checks (qa/verdicts.py)
    replica_of: str | None = None  # a replica's subtask (planning/graph.py)

    @property
    def kept(self) -> KeptOutput:
        return KeptOutput(head=self.output, chars=max(self.output_chars, len(self.output)), path=self.output_path,
                          cut=self.output_cut)

    def keep(self, kept: KeptOutput) -> None:
        self.output, self.output_chars, self.output_path, self.output_cut = kept.head, kept.chars, kept.path, kept.cut

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at


def context_files(records: Iterable[TaskRecord]) -> dict[str, str]:
    """The dependencies whose whole output is in a file rather than in the context: task id -> path."""
    return {r.task_id: r.output_path for r in records if r.output_path is not None}


@dataclass
class CachedResult:
    """A task's result, for identical tasks of the same session to reuse; `done` is set once it is known."""

    task_id: str
    result: RunResult | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class Session:
    id: str
    task_description: str
    policy: SessionPolicy
    graph: TaskGraph
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    status: SessionStatus = "RUNNING"
    error_summary: str | None = None
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    resumed_from: str | None = None
    queue_reason: str | None = None
    strategy: str = "auto"
    owner: str | None = None  # the HTTP client (token) that started it; None on stdio
    routing_notes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    synthesis: str | None = None
    result_cache: dict[str, CachedResult] = field(default_factory=dict)
    extra_attempts: set[str] = field(default_factory=set)
    cancel_requested: bool = False
    stop_reason: str | None = None
    budget_reason: str | None = None  # set when a session budget stopped it (budget.py)
    forecast: Forecast | None = None
    spend: Spend = field(default_factory=Spend)
    killed_processes: int = 0
    peak_parallelism: int = 0
    attempts_running: int = 0
    warmup: PromptWarmup | None = None  # set by the run loop when options.cache_warmup is on
    done: anyio.Event = field(default_factory=anyio.Event)
    wake: anyio.Event = field(default_factory=anyio.Event)
    changed: anyio.Event = field(default_factory=anyio.Event)
    stopped: anyio.Event = field(default_factory=anyio.Event)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.graph)
        self.tasks = {
            t: TaskRecord(task_id=t, agent=n.agent, replica_of=n.replica_of) for t, n in self.graph.nodes.items()
        }

    def poke(self) -> None:
        """Wake the session's scheduling loop and anyone waiting for a change."""
        self.wake.set()
        self.notify()

    def notify(self) -> None:
        """Wake anyone waiting for a change (progress, a task starting or ending)."""
        self.changed.set()
        self.changed = anyio.Event()

    def is_stopping(self) -> bool:
        return self.stop_reason is not None

    def running(self) -> list[TaskRecord]:
        return [r for r in self.tasks.values() if r.status is TaskState.RUNNING]

    def decide_status(self) -> SessionStatus:
        if self.cancel_requested:
            return "CANCELLED"
        states = [r.status for r in self.tasks.values()]
        if all(s is TaskState.SUCCEEDED for s in states):
            return "SUCCESS"
        if any(s is TaskState.SUCCEEDED for s in states) or self.budget_reason is not None:
            return "PARTIAL"  # a spent budget ends a session short, not failed: what finished is kept
        return "FAILED"
