"""Server-wide settings: where state lives, where agents come from, how big the pool is."""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from platformdirs import user_state_dir

from parallel_coordinator.agents.spec import Priority, SourceKind
from parallel_coordinator.execution.environment import DEFAULT_DENY, EnvironmentPolicy
from parallel_coordinator.runners.models import DEFAULT_MODELS


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def default_state_dir() -> Path:
    configured = os.environ.get("PCOORD_STATE_DIR")
    return Path(configured).expanduser() if configured else Path(user_state_dir("parallel-coordinator"))


@dataclass(frozen=True)
class AlertLimits:
    max_error_rate: float = 0.05
    max_cpu_percent: float = 80.0
    max_memory_percent: float = 90.0
    min_throughput_per_min: float | None = None
    repeated_failures: int = 3


@dataclass(frozen=True)
class AgentOverrides:
    """What the configuration file's agent_pool changes on one discovered agent; None keeps the agent's own value."""

    max_concurrent: int | None = None
    priority: Priority | None = None


@dataclass
class Settings:
    state_dir: Path = field(default_factory=default_state_dir)
    # None means the standard search path (CONTRACT.md: user, project, PCOORD_AGENT_DIRS).
    agent_dirs: list[tuple[Path, SourceKind]] | None = None
    pool_size: int = 64
    pool_idle_timeout_s: float = 300.0
    # Where supervisors run: "local" (the loky pool) or "dask" (a Dask cluster; see execution/dask.py).
    backend: str = "local"
    # With the Dask backend: the scheduler's address; None starts a LocalCluster of dask_local_workers.
    dask_scheduler: str | None = None
    dask_local_workers: int = 2
    # The address Dask workers reach this server on; None picks the interface that routes to the scheduler.
    dask_callback_host: str | None = None
    # Tool results stay small: outputs are cut to these sizes; the full text stays in the store.
    result_chars: int = 4000
    total_result_chars: int = 40_000
    # What the supervisor keeps of an agent's stdout in memory; the artefact file has all of it.
    output_cap_bytes: int = 4 * 1024 * 1024
    # What each attempt's stdout and stderr files may take on disk; past it the rest is counted, not kept.
    artefact_cap_bytes: int = 64 * 1024 * 1024
    # New agents wait while the machine's CPU is busier than this (percent of all cores).
    max_cpu_usage: float = field(default_factory=lambda: _env_float("PCOORD_MAX_CPU_USAGE", 80.0))
    # Rate-limited runs are retried without using up a task's attempts, but not forever.
    max_rate_limit_retries: int = 10
    # Cap on one retry's back-off delay.
    max_backoff_s: float = 60.0
    # What a task is expected to take before anything is known of its agent.
    default_task_duration_s: float = 60.0
    # Alerts: flagged in metrics and warned about in the log.
    alert_max_error_rate: float = 0.05
    alert_max_memory_percent: float = 90.0
    alert_min_throughput_per_min: float | None = None
    # HTTP clients: how many sessions one token may have running at once.
    max_sessions_per_principal: int = 32
    # HTTP: a request body larger than this is refused with 413 before it is read.
    max_request_bytes: int = 4 * 1024 * 1024
    # Append every task event to a JSON-lines log per session under logs/.
    performance_logging: bool = field(default_factory=lambda: os.environ.get("PCOORD_PERFORMANCE_LOGGING", "1") != "0")
    # Defaults for coordinate_task calls that leave them unset (configuration file: parallel_config, resource_limits).
    task_timeout_s: float = 300.0
    # How deep coordinators may nest: 0 is the top, 1 a coordinator started inside one of our agents.
    max_depth: int = 1
    # A run silent, with its tree idle on CPU, this long is stalled (options.stall_timeout and agent files override).
    stall_timeout_s: float = 600.0
    # Prompt-cache warm-up (engine/warmup.py): of several runs of one claude agent the first starts alone, the
    # rest once it has answered or after this many seconds; options.cache_warmup turns it off for a session.
    cache_warmup: bool = True
    cache_warmup_wait_s: float = 5.0
    # A plan forecast to cost more than this many dollars needs approval (options.approval_threshold_usd overrides).
    approval_threshold_usd: float = 5.0
    retry_attempts: int = 3
    progress_update_interval_s: float = 1.0
    max_memory_per_agent: int | float | str = "512MB"
    token_budget_per_agent: int | None = 50_000
    # Per-agent overrides of max_concurrent and priority, keyed by agent name.
    agent_pool: dict[str, AgentOverrides] = field(default_factory=dict)
    # Agent that decomposes a plain task into subtasks, and agent run last to merge the results.
    planner: str | None = None
    synthesizer: str | None = None
    # A planner run (the planner's runner, planning/rerank.py) re-ranks the lexical router's top 5 for routed
    # subtasks, one run per plan; off: the lexical router alone, no extra run.
    routing_rerank: bool = True
    # Model chosen for a task by its weight: simple, default, critical.
    models: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    # What agents inherit (environment.py): extra secret-name patterns to remove, and names to let through.
    agent_env_deny: tuple[str, ...] = ()
    agent_env_pass: tuple[str, ...] = ()
    # Retention (retention.py): ended sessions, with their rows and files, go once older than retention_days
    # or, oldest first, while everything kept passes retention_mb (MB of 2**20 bytes). None or 0: no such limit.
    retention_days: float | None = 30.0
    retention_mb: float | None = 2048.0
    # A server applies them at start and then this often.
    retention_interval_s: float = 3600.0
    # QA (qa/, engine/quality.py): the checks a session runs when its options name none, and the commands
    # performance_test and documentation_check run (a string runs through `sh -c`, a list is the argv).
    qa_default: tuple[str, ...] = ()
    qa_commands: dict[str, str | list[str]] = field(default_factory=dict)
    # The configuration file these settings were read from (config/file.py load_settings), if any.
    config_file: Path | None = None
    # What the file holds that is accepted but no longer read (config/file.py RETIRED_KEYS), one note per key.
    config_notes: tuple[str, ...] = ()

    @property
    def database(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def alert_limits(self) -> AlertLimits:
        return AlertLimits(
            max_error_rate=self.alert_max_error_rate, max_cpu_percent=self.max_cpu_usage,
            max_memory_percent=self.alert_max_memory_percent,
            min_throughput_per_min=self.alert_min_throughput_per_min,
        )

    @property
    def environment_policy(self) -> EnvironmentPolicy:
        return EnvironmentPolicy(deny=(*DEFAULT_DENY, *self.agent_env_deny), pass_through=tuple(self.agent_env_pass))

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"


def default(name: str) -> Any:
    """A setting's built-in default, for the configuration file's schema to show the same value."""
    for entry in fields(Settings):
        if entry.name == name:
            if entry.default is not MISSING:
                return entry.default
            if entry.default_factory is not MISSING:
                return entry.default_factory()
    raise KeyError(name)

