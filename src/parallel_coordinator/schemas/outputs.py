"""What the tools return. Field names are fixed by CONTRACT.md; extra fields only ever get added."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SessionStatus = Literal["RUNNING", "SUCCESS", "PARTIAL", "FAILED", "CANCELLED"]
TaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled", "interrupted"]


class PrefixTokens(BaseModel):
    """The prompt of a run's first turn as the API counted it: what the run paid before doing any work."""

    input_tokens: int = Field(description="Uncached prompt tokens.")
    cache_creation_input_tokens: int = Field(description="Tokens written to the prompt cache.")
    cache_read_input_tokens: int = Field(description="Tokens read from the prompt cache (a tenth of the price).")
    total_tokens: int


class PrefixFigures(BaseModel):
    """The first turn's prompt, averaged over the runs that reported one (claude agents do)."""

    runs: int
    avg_tokens: float
    avg_input_tokens: float
    avg_cache_creation_input_tokens: float
    avg_cache_read_input_tokens: float


class AttemptRecord(BaseModel):
    number: int
    agent: str
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    outcome: str = Field(description="exited, timeout, cancelled, memory, spawn_failed, lost or unavailable")
    error: str | None = None
    prefix: PrefixTokens | None = None


class ReplicaResult(BaseModel):
    """One replica of a subtask run `count` times (see TaskResult.replicas)."""

    task_id: str = Field(description="The subtask's id and the replica's number: 'review#2'.")
    agent: str
    status: str
    output: str = ""
    output_truncated: bool = False
    output_uri: str | None = None
    output_json: Any = None
    error: str | None = None
    attempts: int = 0


class QaCheck(BaseModel):
    """One QA check of the task's last attempt (options.qa)."""

    check: str = Field(description="A built-in check (syntax_check, security_scan, ...) or the agent that checked.")
    verdict: Literal["pass", "fail", "unchecked", "not_run"] = Field(
        description="'fail' rejected the attempt (retried with the findings); 'unchecked': it could not tell (see"
        " notes); 'not_run': not configured."
    )
    duration_s: float = 0.0
    findings: list[str] = Field(default_factory=list, description="What is wrong, each with its file and line.")
    notes: list[str] = Field(default_factory=list, description="What was not checked and why; tools not installed.")


class TaskResult(BaseModel):
    task_id: str
    agent: str = Field(description="The agent that produced the final attempt.")
    status: TaskStatus
    output: str = ""
    error: str | None = None
    attempts: int = Field(0, description="How many attempts were made.")
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    output_truncated: bool = Field(False, description="True when `output` was cut to keep this result small.")
    output_chars: int = Field(0, description="Length of the whole output.")
    output_uri: str | None = Field(None, description="Resource holding the whole output (read it with resources/read).")
    output_cut_on_disk: bool = Field(
        False, description="The agent wrote more than the server keeps on disk: output_uri holds only the start."
    )
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    prefix: PrefixTokens | None = Field(None, description="The final attempt's first-turn prompt (claude agents).")
    attempt_log: list[AttemptRecord] = Field(default_factory=list)
    output_json: Any = Field(
        None, description="The output as validated against the subtask's output_schema (what dependents receive)."
    )
    flags: list[str] = Field(
        default_factory=list,
        description="Signs that the run claimed work it did not do (no_tool_use, no_change), each with its reason.",
    )
    qa: list[QaCheck] = Field(
        default_factory=list, description="The last attempt's QA checks (options.qa): each one's verdict and duration.",
    )
    replicas: list[ReplicaResult] | None = Field(
        None, description="With count > 1: each replica's result; `output` is their merge (merge: all, vote, judge).",
    )
    worktree: dict[str, Any] | None = Field(
        None, description="For an isolated task: its branch and what it changed (files, insertions, deletions)."
    )


class AgentFigures(BaseModel):
    runs: int
    failures: int
    avg_duration_s: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    prefix: PrefixFigures | None = Field(None, description="Its runs' average first-turn prompt (claude agents).")


class SessionMetrics(BaseModel):
    avg_task_time_s: float = 0.0
    throughput_per_min: float = 0.0
    error_rate: float = 0.0
    p95_task_time_s: float = 0.0
    success_rate: float = 0.0
    parallel_efficiency: float = Field(
        0.0, description="Busy agent-seconds / (min(max_agents, tasks) x wall seconds)."
    )
    peak_parallelism: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    agents: dict[str, AgentFigures] = Field(default_factory=dict)
    alerts: list[str] = Field(default_factory=list)


class ActiveAgent(BaseModel):
    agent: str
    task_id: str
    progress: float | None = Field(None, description="0-100 when the agent reports it.")
    message: str | None = None
    elapsed_s: float
    pid: int | None = None


class ForecastFigures(BaseModel):
    """What a plan is expected to take, from what its agents used before (a documented prior without history)."""

    runs: int = Field(description="Agent runs, retries not counted.")
    tokens: int
    usd: float
    seconds: float = Field(description="Expected wall time.")


class SpendFigures(BaseModel):
    """What the session has used so far: every attempt, retries included; tokens of running agents too."""

    tokens: int
    usd: float
    seconds: float


class BudgetFigures(BaseModel):
    tokens: int | None = None
    usd: float | None = None
    seconds: float | None = None


class ProgressStatus(BaseModel):
    session_id: str
    status: SessionStatus
    total_tasks: int
    completed: int
    in_progress: int
    failed: int
    pending: int
    cancelled: int
    skipped: int
    agents_active: list[ActiveAgent] = Field(default_factory=list)
    waiting_on_twins: dict[str, str] = Field(
        default_factory=dict,
        description="Running tasks that run no agent: each waits for an identical task (task id -> its id), whose"
        " result it will reuse.",
    )
    queue_reason: str | None = Field(
        None, description="Why ready tasks are waiting to start (CPU, memory or a rate limit), if they are."
    )
    estimated_completion: str | None = Field(None, description="ISO 8601 estimate, or null when unknown.")
    performance_metrics: SessionMetrics = Field(default_factory=SessionMetrics)
    results: list[TaskResult] | None = Field(None, description="Present once the session has ended.")
    results_omitted: int = Field(
        0, description="Tasks left out of results to keep the answer small (failures come first); "
        "the session resource lists them all.",
    )
    forecast: ForecastFigures | None = Field(None, description="What the plan was expected to take, at its start.")
    spent: SpendFigures | None = Field(
        None, description="What it has used so far, to hold against forecast and budget."
    )
    budget: BudgetFigures | None = Field(None, description="The session's budget (options.budget), if it has one.")


class PlannedTask(BaseModel):
    task_id: str
    agent: str
    description: str
    dependencies: list[str]
    priority: int


class CoordinationResult(BaseModel):
    """The session's outcome; while it still runs, the same shape with status RUNNING and progress counts."""

    session_id: str
    status: SessionStatus
    results: list[TaskResult] = Field(default_factory=list, description="Once the session has ended.")
    results_omitted: int = Field(
        0, description="Tasks left out of results to keep the answer small (failures come first); "
        "the session resource lists them all.",
    )
    execution_time_s: float = 0.0
    performance_metrics: SessionMetrics = Field(default_factory=SessionMetrics)
    error_summary: str | None = None
    synthesis: str | None = Field(
        None,
        description="One answer for the whole session: the synthesizer's, else a summary of every task's result.",
    )
    resumed_from: str | None = Field(None, description="The session this one resumed, if any.")
    notes: list[str] = Field(
        default_factory=list, description="How the plan was made: the planner's work, routing decisions, repairs."
    )
    progress: ProgressStatus | None = Field(None, description="Live counts; set while status is RUNNING.")
    plan: list[PlannedTask] | None = Field(None, description="The validated plan; set for dry runs.")
    next_step: str | None = Field(None, description="What to call next, when the session is still running.")
    forecast: ForecastFigures | None = Field(None, description="What the plan is expected to take.")
    spent: SpendFigures | None = Field(None, description="What the session used: every attempt, retries included.")
    budget: BudgetFigures | None = Field(None, description="The session's budget (options.budget), if it has one.")
    approval_required: bool = Field(
        False, description="Nothing ran: the forecast is over the approval threshold; next_step says how to approve.",
    )


class CancelResult(BaseModel):
    session_id: str
    status: SessionStatus
    cancelled_tasks: int
    killed_processes: int
    note: str | None = Field(
        None, description="What happened when the session ran in another server on the same state directory."
    )


class SystemHealth(BaseModel):
    cpu_percent: float
    memory_used_mb: float
    memory_percent: float
    active_agents: int
    queue_size: int
    error_rate: float
    queue_reasons: list[str] = Field(default_factory=list, description="Why queued tasks wait, per session.")


class PerformanceFigures(BaseModel):
    tasks_per_second: float
    avg_response_time_s: float
    p95_response_time_s: float
    success_rate: float
    parallel_efficiency: float


class PerformanceMetrics(BaseModel):
    system_health: SystemHealth
    performance: PerformanceFigures
    agents: dict[str, AgentFigures]
    alerts: list[str] = Field(default_factory=list, description="Conditions worth attention right now.")
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    prefix: PrefixFigures | None = Field(None, description="The average first-turn prompt of recent claude runs.")


class AgentInfo(BaseModel):
    name: str
    description: str
    runner: str
    model: str | None
    tools: list[str] | None
    source: str
    max_concurrent: int | None
    priority: str
    path: str | None = None


class DiagnosticInfo(BaseModel):
    path: str
    problem: str


class AgentListing(BaseModel):
    agents: list[AgentInfo]
    diagnostics: list[DiagnosticInfo]
    # Set only when no agent was found: where the server looked and how to add or try one.
    help: str | None = None


JsonDict = dict[str, Any]
