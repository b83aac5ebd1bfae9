"""What a session runs by: the caller's options, resolved against the server's settings, frozen.

Pydantic models stay at the edges (tools, CLI, configuration): the facade turns a call's options into
this once, at start (the options themselves are only stored, as given), and the engine's parts read
only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from parallel_coordinator.schemas.inputs import CoordinateOptions, SessionBudget

if TYPE_CHECKING:
    from parallel_coordinator.config.settings import Settings

_DEFAULT_MAX_AGENTS = 64  # a session's default; up to 256 when asked (command agents: shards carry them cheaply)

PriorityMode = Literal["speed", "quality"]


@dataclass(frozen=True)
class SessionPolicy:
    max_agents: int
    retry_attempts: int
    timeout_s: float | None
    on_failure: Literal["continue", "stop"]
    on_flagged: Literal["keep", "fail"]  # a claim of work with no sign of it: flagged only, or a failure
    # "speed": the model tier each task's priority suggests, small tasks batched in a burst.
    # "quality": one tier up for claude agents that leave the model open, and no batching.
    priority_mode: PriorityMode
    memory_limit_mb: float
    token_budget_per_agent: int | None
    stall_timeout_s: float | None  # None: the agent file's, else the server's default
    cache_warmup: bool  # the first run of a claude agent goes alone until it has answered (warmup.py)
    cost_budget_per_agent_usd: float | None
    reuse_results: Literal["session", "server", "off"]
    working_directory: str | None
    synthesizer: str | None
    isolation: Literal["none", "worktree"]
    keep_worktrees: bool
    progress_interval_s: float
    result_chars: int | None
    total_result_chars: int | None
    budget: SessionBudget | None  # the whole session's (budget.py); the per-agent caps stay too
    qa: tuple[str, ...]  # checks each attempt's result must pass (engine/quality.py, qa/)

    @classmethod
    def from_options(cls, options: CoordinateOptions) -> SessionPolicy:
        """The options as given (already merged with the server's defaults, see Coordinator.with_defaults)."""
        return cls(
            max_agents=options.max_agents, retry_attempts=options.retry_attempts, timeout_s=options.timeout,
            on_failure=options.on_failure, on_flagged=options.on_flagged, priority_mode=options.priority_mode,
            memory_limit_mb=options.memory_limit_mb, token_budget_per_agent=options.token_budget_per_agent,
            stall_timeout_s=options.stall_timeout, cache_warmup=options.cache_warmup,
            cost_budget_per_agent_usd=options.cost_budget_per_agent_usd, reuse_results=options.reuse_results,
            working_directory=options.working_directory, synthesizer=options.synthesizer,
            isolation=options.isolation, keep_worktrees=options.keep_worktrees,
            progress_interval_s=options.progress_update_interval, result_chars=options.result_chars,
            total_result_chars=options.total_result_chars,
            budget=options.budget, qa=options.qa_checks,
        )


def options_with_defaults(options: CoordinateOptions | None, settings: Settings) -> CoordinateOptions:
    """A call's options, with what the caller left unset taken from the server's configuration."""
    given = options.model_dump(exclude_unset=True) if options is not None else {}
    defaults = {
        "max_agents": min(_DEFAULT_MAX_AGENTS, settings.pool_size),
        "retry_attempts": settings.retry_attempts,
        "progress_update_interval": settings.progress_update_interval_s,
        "max_memory_per_agent": settings.max_memory_per_agent,
        "token_budget_per_agent": settings.token_budget_per_agent,
        "synthesizer": settings.synthesizer,
        "cache_warmup": settings.cache_warmup,
        "approval_threshold_usd": settings.approval_threshold_usd,
        "qa": list(settings.qa_default),
    }
    return CoordinateOptions.model_validate({**defaults, **given})
