"""The configuration file's schema: its sections and keys, with the rules each value must meet.

Unknown keys are refused (a misspelt key must not be silently ignored); the loader is file.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from parallel_coordinator.agents.spec import Priority
from parallel_coordinator.config.settings import default
from parallel_coordinator.runners.models import DEFAULT_MODELS
from parallel_coordinator.schemas.inputs import parse_megabytes


def _not_bool(value: object) -> object:
    # YAML reads `yes` as true, and pydantic would take true for 1: a number must be written as one.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParallelConfig(_Section):
    max_concurrent_agents: Count = Field(default("pool_size"), ge=1, le=256)
    task_timeout: Number = Field(default("task_timeout_s"), gt=0, le=86_400)
    retry_attempts: Count = Field(default("retry_attempts"), ge=1, le=20)
    progress_update_interval: Number = Field(default("progress_update_interval_s"), ge=0.1, le=60)
    max_depth: int = Field(default("max_depth"), ge=0, le=16)
    cache_warmup: bool = default("cache_warmup")
    cache_warmup_wait: Number = Field(default("cache_warmup_wait_s"), ge=0, le=60)
    approval_threshold_usd: Number = Field(default("approval_threshold_usd"), ge=0, le=100_000)
    routing_rerank: bool = default("routing_rerank")


class ResourceLimits(_Section):
    max_memory_per_agent: int | float | str = default("max_memory_per_agent")
    max_cpu_usage: Number = Field(80.0, ge=1, le=100)
    token_budget_per_agent: Count | None = Field(default("token_budget_per_agent"), ge=1)

    @field_validator("max_memory_per_agent")
    @classmethod
    def _readable_memory(cls, value: int | float | str) -> int | float | str:
        parse_megabytes(value)
        return value


class AlertThresholds(_Section):
    error_rate: Number = Field(default("alert_max_error_rate"), ge=0, le=1)
    memory_percent: Number = Field(default("alert_max_memory_percent"), ge=1, le=100)
    min_throughput_per_min: Number | None = Field(None, ge=0)


class Monitoring(_Section):
    performance_logging: bool = True
    alert_thresholds: AlertThresholds | None = None


class AgentPoolEntry(_Section):
    max_concurrent: Count | None = Field(None, ge=1)
    priority: Priority | None = None


class Execution(_Section):
    """Where supervisors run: the local loky pool, or a Dask cluster (an address, or a LocalCluster)."""

    backend: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    local_workers: Count = Field(default("dask_local_workers"), ge=1, le=64)
    callback_host: str | None = Field(None, min_length=1)

    @field_validator("scheduler")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]+://\S+", value):
            raise ValueError("must be an address like tcp://host:8786")
        return value


class Models(_Section):
    simple: str = Field(DEFAULT_MODELS["simple"], min_length=1)
    default: str = Field(DEFAULT_MODELS["default"], min_length=1)
    critical: str = Field(DEFAULT_MODELS["critical"], min_length=1)


class AgentEnvironment(_Section):
    """What agents inherit (environment.py): more secret-name patterns to remove, names to let through."""

    deny: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()


class Retention(_Section):
    """How long ended sessions and their files are kept (retention.py); 0 or null: no limit of that kind."""

    max_age_days: Number | None = Field(30.0, ge=0)
    max_total_mb: Number | None = Field(2048.0, ge=0)


def _a_command(value: object) -> object:
    is_argv = isinstance(value, list) and value and all(isinstance(part, str) and part for part in value)
    if not (isinstance(value, str) and value.strip()) and not is_argv:
        raise ValueError("must be a command: a string (run by `sh -c`) or a list of its argv, not empty")
    return value


Command = Annotated[str | list[str], BeforeValidator(_a_command)]


class QaCommands(_Section):
    """The project's own commands for the QA checks that run one (a string runs through `sh -c`, a list is argv)."""

    performance_test: Command | None = None
    documentation_check: Command | None = None


class Qa(_Section):
    """QA checks (options.qa): which run when a call names none, and the commands of the configured ones."""

    default: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field((), max_length=16)
    commands: QaCommands | None = None

    @field_validator("default")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"names {', '.join(repr(n) for n in twice)} more than once; name each check once")
        return value


class SettingsFile(_Section):
    """The whole file. A section left empty (`monitoring:` with nothing under it) is the same as no section."""

    parallel_config: ParallelConfig | None = None
    resource_limits: ResourceLimits | None = None
    monitoring: Monitoring | None = None
    agent_pool: dict[str, AgentPoolEntry] | None = None
    planner: str | None = Field(None, min_length=1)
    synthesizer: str | None = Field(None, min_length=1)
    models: Models | None = None
    execution: Execution | None = None
    agent_environment: AgentEnvironment | None = None
    retention: Retention | None = None
    qa: Qa | None = None
