"""What callers send: the subtasks of a plan and the options of a coordinate_task call."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parallel_coordinator.errors import shortened

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNIT_MB = {"": 1.0, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0 * 1024}


def parse_megabytes(value: int | float | str) -> float:
    """'512MB', '1.5 GB', '2g' or a plain number of megabytes -> megabytes."""
    if isinstance(value, bool):
        raise ValueError(f"memory size must be a number of megabytes or a string like '512MB', not {value!r}")
    if isinstance(value, int | float):
        try:
            megabytes = float(value)
        except OverflowError:
            raise ValueError(f"memory size {value!r} is far too large; write it like '512MB' or '2GB'") from None
    else:
        match = _MEMORY.match(value)
        if not match:
            raise ValueError(f"cannot read memory size {shortened(value)}; write it like '512MB' or '2GB'")
        unit = (match.group(2) or "").lower().rstrip("b").rstrip("i")
        megabytes = float(match.group(1)) * _UNIT_MB[unit]
    if not math.isfinite(megabytes) or megabytes <= 0:
        shown = shortened(value) if isinstance(value, str) else repr(value)
        raise ValueError(f"memory size must be a positive finite size, got {shown}")
    return megabytes


# Our ids are 16 characters; the bound keeps a hostile id from being carried and quoted around whole.
SessionId = Annotated[
    str, Field(min_length=1, max_length=200, description="The session_id that coordinate_task returned.")
]


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(3, ge=1, le=20, description="Attempts in all, the first included.")
    backoff_seconds: float = Field(1.0, ge=0, le=600, description="Base delay before a retry; doubles each time.")


def schema_error(schema: object) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None. Every `$ref` must resolve inside the schema itself:
    one that leads nowhere (or to the network, which is never fetched) would fail only after the agent ran."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    if not isinstance(schema, dict):
        return f"must be a JSON Schema object, got {type(schema).__name__}"
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return f"is not a valid JSON Schema: {exc.message[:600]}"
    # A registry of this schema alone: what validation can reach, with no retrieval of anything else.
    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    resolver = Registry().with_resource("", resource).resolver(base_uri="")
    for ref in _refs(schema):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"has a $ref {ref!r} that does not resolve within the schema (remote schemas are never fetched)"
    return None


def _refs(schema: object) -> list[str]:
    found: list[str] = []
    stack = [schema]
    while stack:  # iterative: a deeply nested schema must not exhaust the recursion limit
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class JudgeMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judge: str = Field(
        min_length=1, max_length=200, description="The agent that picks or merges the replicas' answers."
    )


MAX_REPLICAS = 16
MAX_QA_CHECKS = 16  # checks named in options.qa (each runs on every attempt)


class Subtask(BaseModel):
    """One node of the graph."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="Unique id within this call, e.g. 'api' or 't3'.")
    description: str = Field(min_length=1, max_length=100_000, description="What this agent must do.")
    agent_type: str | None = Field(
        None, max_length=200,
        description="Name of the agent to run (see list_agents). Omit to route to the best-matching agent.",
    )
    dependencies: list[str] = Field(
        default_factory=list, max_length=10_000,
        description="Ids of subtasks that must succeed first; their outputs arrive in this task's context.",
    )
    priority: int = Field(3, ge=1, le=5, description="1 is the most urgent, 5 the least.")
    timeout: float | None = Field(None, gt=0, le=86_400, description="Seconds one run may take.")
    retry_policy: RetryPolicy | None = None
    fallback_agents: list[str] | None = Field(None, description="Agents to try, in order, if this one keeps failing.")
    expected_duration: float | None = Field(None, gt=0, le=86_400, description="Seconds, a scheduling hint.")
    resources_required: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = Field(
        None,
        description="JSON Schema the output must match: claude runs get it as --json-schema, others are parsed and"
        " validated; an output that does not match is retried with the error; a valid one is output_json.",
    )
    count: int = Field(
        1, ge=1, le=MAX_REPLICAS, description="Replicas: run this many independent attempts at once (default 1)."
    )
    merge: Literal["all", "vote"] | JudgeMerge | None = Field(
        None,
        description="How replicas become the result: 'all' (each, labelled; the default), 'vote' (the majority"
        " answer; no majority fails the task, saying so) or {'judge': AGENT} (that agent picks or merges).",
    )

    @field_validator("output_schema")
    @classmethod
    def _a_usable_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = schema_error(value) if value is not None else None
        if problem is not None:
            raise ValueError(f"output_schema {problem}")
        return value

    @model_validator(mode="after")
    def _merge_needs_replicas(self) -> Subtask:
        if self.merge is not None and self.count == 1:
            raise ValueError(f"task {self.id!r} sets merge but count is 1; set count to 2 or more, or drop merge")
        return self

    @property
    def merge_kind(self) -> str:
        return "judge" if isinstance(self.merge, JudgeMerge) else self.merge or "all"

    @property
    def judge_agent(self) -> str | None:
        return self.merge.judge if isinstance(self.merge, JudgeMerge) else None

    @field_validator("id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if _CONTROL.search(value) or not value.strip():
            raise ValueError(f"task id {value!r} must be printable text without control characters")
        return value


class SessionBudget(BaseModel):
    """Caps for the whole session; reaching one stops it (no new runs, running agents killed), PARTIAL."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(None, ge=1, description="Tokens all runs together may use (input, cached, output).")
    usd: float | None = Field(None, gt=0, le=100_000, description="Dollars all runs together may spend.")
    seconds: float | None = Field(None, gt=0, le=7 * 86_400, description="Wall seconds the session may run.")


class CoordinateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_agents: int = Field(
        64, ge=1, le=256,
        description="Agents running at once in this session (default 64, at most 256; past the server's"
        " max_concurrent_agents, which is 64 unless configured, runs wait; claude agents also wait for memory).",
    )
    timeout: float | None = Field(None, gt=0, le=7 * 86_400, description="Seconds the whole session may take.")
    stall_timeout: float | None = Field(
        None, gt=0, le=86_400,
        description="Seconds an agent may show no sign of work (no output, no stream event, its whole process"
        " tree idle on CPU) before it is killed as `stalled` and retried; default: the agent file's"
        " `stall_timeout`, else 600.",
    )
    cache_warmup: bool = Field(
        True,
        description="Of several runs of one claude agent, start one first and the rest once it has answered (at"
        " most a few seconds later), so that they read the prompt cache it wrote instead of each writing its"
        " own; false starts them all at once. Default: the configuration's, on unless configured off.",
    )
    retry_attempts: int = Field(
        3, ge=1, le=20,
        description="Attempts per agent for each task, retried with exponential backoff, unless its retry_policy says"
        " otherwise.",
    )
    on_flagged: Literal["keep", "fail"] = Field(
        "keep",
        description="A run that claims success with no sign of the work its task asks for (no tool call from an"
        " agent with tools, an isolated worktree left unchanged) is flagged in its result ('keep'), or counts as"
        " a failed attempt and is retried ('fail').",
    )
    on_failure: Literal["continue", "stop"] = Field(
        "continue",
        description="'continue': a task that fails for good skips only its dependents; 'stop': end the session there.",
    )
    priority_mode: Literal["speed", "quality"] = Field(
        "speed",
        description="'speed': claude agents that leave the model open get the tier their task's priority suggests,"
        " and a burst batches small tasks; 'quality': one model tier up, and every task gets a run of its own.",
    )
    wait_seconds: float = Field(
        30.0, ge=0, le=3600,
        description="How long coordinate_task waits for the session to finish before returning a RUNNING snapshot.",
    )
    max_memory_per_agent: int | float | str = Field(
        "512MB", description="Memory cap for each agent's whole process tree: '512MB', '2GB' or megabytes.",
    )
    token_budget_per_agent: int | None = Field(
        50_000, ge=1, description="Tokens one claude run may use (input, cached and output); past it, it is stopped."
    )
    cost_budget_per_agent_usd: float | None = Field(
        None, gt=0, le=10_000, description="Dollars one claude run may spend (passed as --max-budget-usd)."
    )
    budget: SessionBudget | None = Field(
        None,
        description="Tokens, dollars and wall seconds for the whole session, retries included. When one is reached,"
        " no new agent starts, running agents are stopped, finished results are kept and the session ends PARTIAL"
        " with the reason; the status shows spend against it all along.",
    )
    approval_threshold_usd: float | None = Field(
        None, ge=0, le=100_000,
        description="A plan whose forecast is over this many dollars does not start without approval (default: the"
        " configuration's, 5). The user is asked where the client supports elicitation; otherwise the answer"
        " carries the forecast and nothing runs until the call is repeated with approved: true.",
    )
    approved: bool = Field(False, description="The caller approves the forecast: run even over the threshold.")
    reuse_results: Literal["session", "server", "off"] = Field(
        "session",
        description="Run identical tasks (same agent, description and context) once: within the session, across"
        " the server's sessions, or never.",
    )
    working_directory: str | None = Field(None, description="Directory the agents run in; default the server's.")
    dry_run: bool = Field(False, description="Validate and return the plan without running it.")
    progress_update_interval: float = Field(
        1.0, ge=0.1, le=60, description="Seconds between progress notifications while anything runs."
    )
    result_chars: int | None = Field(
        None, ge=0, le=1_000_000, description="Cap on each output in the result (default 4,000 characters)."
    )
    total_result_chars: int | None = Field(
        None, ge=0, le=10_000_000, description="Cap on all outputs together (default 40,000 characters)."
    )
    synthesizer: str | None = Field(
        None, max_length=200,
        description="Agent to run last with every result in its context, merging them into one answer.",
    )
    isolation: Literal["none", "worktree"] = Field(
        "none", description="'worktree': every agent works in its own git worktree of working_directory."
    )
    keep_worktrees: bool = Field(False, description="Keep the worktrees after their tasks end (branches are kept).")
    qa: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=MAX_QA_CHECKS,
        description="Checks each task's result must pass before it counts as succeeded, run at once: 'syntax_check'"
        " (the changed files parse), 'security_scan' (secrets; bandit, semgrep when installed), 'performance_test'"
        " and 'documentation_check' (the configuration's commands), or an agent's name (it answers pass or fail"
        " with reasons). A failed check fails the attempt, which is retried with the findings. Default: the"
        " configuration's qa.default.",
    )
    resume_session: str | None = Field(
        None, min_length=1, max_length=200,
        description="Id of an ended session to run again: tasks that succeeded keep their results, the rest re-run.",
    )

    @field_validator("max_memory_per_agent")
    @classmethod
    def _readable_memory(cls, value: int | float | str) -> int | float | str:
        parse_megabytes(value)
        return value

    @field_validator("qa")
    @classmethod
    def _each_check_once(cls, value: list[str]) -> list[str]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"qa names {', '.join(repr(n) for n in twice)} more than once; name each check once")
        return value

    @field_validator("working_directory")
    @classmethod
    def _a_usable_path(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError(f"working_directory {value[:80]!r} holds a NUL byte, which no path can contain")
        return value

    @property
    def qa_checks(self) -> tuple[str, ...]:
        return tuple(self.qa)

    @property
    def memory_limit_mb(self) -> float:
        return parse_megabytes(self.max_memory_per_agent)
