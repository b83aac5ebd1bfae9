"""The configuration file: find it, validate it (errors name the file, line and key), apply PCOORD_* overrides.

`load_settings()` returns the effective `Settings` and, for every setting, where its value came from.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_state_dir
from pydantic import BaseModel, ValidationError

from parallel_coordinator.config.messages import explain
from parallel_coordinator.config.schema import (
    Execution,
    Monitoring,
    ParallelConfig,
    ResourceLimits,
    Retention,
    SettingsFile,
)
from parallel_coordinator.config.settings import AgentOverrides, Settings
from parallel_coordinator.errors import ConfigError

CONFIG_ENV = "PCOORD_CONFIG"
PROJECT_CONFIG = Path(".claude") / "parallel-coordinator.yaml"
USER_CONFIG = Path(".claude") / "agents" / "system" / "parallel_config.yaml"

log = logging.getLogger(__name__)


# Key path in the file -> the Settings field it sets. agent_pool and models are applied on their own.
FILE_KEYS: dict[tuple[str, ...], str] = {
    ("parallel_config", "max_concurrent_agents"): "pool_size",
    ("parallel_config", "task_timeout"): "task_timeout_s",
    ("parallel_config", "retry_attempts"): "retry_attempts",
    ("parallel_config", "progress_update_interval"): "progress_update_interval_s",
    ("parallel_config", "max_depth"): "max_depth",
    ("parallel_config", "cache_warmup"): "cache_warmup",
    ("parallel_config", "cache_warmup_wait"): "cache_warmup_wait_s",
    ("parallel_config", "approval_threshold_usd"): "approval_threshold_usd",
    ("parallel_config", "routing_rerank"): "routing_rerank",
    ("resource_limits", "max_memory_per_agent"): "max_memory_per_agent",
    ("resource_limits", "max_cpu_usage"): "max_cpu_usage",
    ("resource_limits", "token_budget_per_agent"): "token_budget_per_agent",
    ("monitoring", "performance_logging"): "performance_logging",
    ("monitoring", "alert_thresholds", "error_rate"): "alert_max_error_rate",
    ("monitoring", "alert_thresholds", "memory_percent"): "alert_max_memory_percent",
    ("monitoring", "alert_thresholds", "min_throughput_per_min"): "alert_min_throughput_per_min",
    ("execution", "backend"): "backend",
    ("execution", "scheduler"): "dask_scheduler",
    ("execution", "local_workers"): "dask_local_workers",
    ("execution", "callback_host"): "dask_callback_host",
    ("agent_environment", "deny"): "agent_env_deny",
    ("agent_environment", "allow"): "agent_env_pass",
    ("retention", "max_age_days"): "retention_days",
    ("retention", "max_total_mb"): "retention_mb",
    ("qa", "default"): "qa_default",
    ("planner",): "planner",
    ("synthesizer",): "synthesizer",
}

# Keys earlier releases took and nothing ever read: still accepted, so a user's file keeps loading, but each
# one found is named in Settings.config_notes (`pcoord config` shows them; `pcoord serve` logs them as it starts).
RETIRED_KEYS: dict[tuple[str, ...], str] = {
    ("parallel_config", "load_balancing"): (
        "tasks always start critical path first, within agent_pool limits, max_concurrent_agents and max_cpu_usage"
    ),
    ("monitoring", "metrics_collection"): (
        "metrics are worked out from the state database when asked for; monitoring.performance_logging"
        " turns off the event log, and /metrics is served only with `pcoord serve --prometheus`"
    ),
}

# Variable -> (Settings field, the file key whose rules its value must meet).
ENV_KEYS: dict[str, tuple[str, type[BaseModel], str]] = {
    "PCOORD_POOL_SIZE": ("pool_size", ParallelConfig, "max_concurrent_agents"),
    "PCOORD_TASK_TIMEOUT": ("task_timeout_s", ParallelConfig, "task_timeout"),
    "PCOORD_RETRY_ATTEMPTS": ("retry_attempts", ParallelConfig, "retry_attempts"),
    "PCOORD_MAX_DEPTH": ("max_depth", ParallelConfig, "max_depth"),
    "PCOORD_APPROVAL_THRESHOLD_USD": ("approval_threshold_usd", ParallelConfig, "approval_threshold_usd"),
    "PCOORD_ROUTING_RERANK": ("routing_rerank", ParallelConfig, "routing_rerank"),
    "PCOORD_MAX_CPU_USAGE": ("max_cpu_usage", ResourceLimits, "max_cpu_usage"),
    "PCOORD_PERFORMANCE_LOGGING": ("performance_logging", Monitoring, "performance_logging"),
    "PCOORD_BACKEND": ("backend", Execution, "backend"),
    "PCOORD_DASK_SCHEDULER": ("dask_scheduler", Execution, "scheduler"),
    "PCOORD_DASK_WORKERS": ("dask_local_workers", Execution, "local_workers"),
    "PCOORD_DASK_CALLBACK_HOST": ("dask_callback_host", Execution, "callback_host"),
    "PCOORD_RETENTION_DAYS": ("retention_days", Retention, "max_age_days"),
    "PCOORD_RETENTION_MB": ("retention_mb", Retention, "max_total_mb"),
}


def search_paths(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the configuration file is looked for, first match wins."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    paths = [cwd / PROJECT_CONFIG, home / USER_CONFIG]
    if environ.get(CONFIG_ENV):
        paths.insert(0, cwd / Path(environ[CONFIG_ENV]).expanduser())
    return paths


def find_config_file(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file in use: PCOORD_CONFIG (which must exist), else the first of the standard places."""
    environ = os.environ if environ is None else environ
    paths = search_paths(cwd, environ)
    if environ.get(CONFIG_ENV) and not paths[0].is_file():
        raise ConfigError(
            f"{CONFIG_ENV}={environ[CONFIG_ENV]!r}, but there is no file at {str(paths[0])!r};"
            f" create it or unset {CONFIG_ENV}"
        )
    return next((path for path in paths if path.is_file()), None)


def load_settings(
    cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Defaults, then the configuration file, then PCOORD_* variables.

    Returns the settings and, for each Settings field, where its value came from: "default",
    "<file>:<line>" or "env PCOORD_...".
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {
        "state_dir": Path(user_state_dir("parallel-coordinator")), "max_cpu_usage": 80.0, "performance_logging": True,
    }
    sources = {f.name: "default" for f in dataclasses.fields(Settings)}

    path = find_config_file(cwd, environ)
    if path is not None:
        shown = _shown(path, cwd)
        values["config_file"] = path
        sources["config_file"] = f"env {CONFIG_ENV}" if environ.get(CONFIG_ENV) else "search path"
        for field_name, (value, line) in read_config_file(path, shown).items():
            values[field_name] = value
            sources[field_name] = f"{shown}:{line}"

    if environ.get("PCOORD_STATE_DIR"):
        values["state_dir"] = Path(environ["PCOORD_STATE_DIR"]).expanduser()
        sources["state_dir"] = "env PCOORD_STATE_DIR"
    for variable, (field_name, section, key) in ENV_KEYS.items():
        raw = environ.get(variable)
        if raw:
            values[field_name] = _env_value(variable, raw, section, key)
            sources[field_name] = f"env {variable}"
    return Settings(**values), sources


def read_config_file(path: Path, shown: str | None = None) -> dict[str, tuple[Any, int]]:
    """The Settings fields a configuration file sets: field name -> (value, line of its key)."""
    shown = str(path) if shown is None else shown
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(f"cannot read configuration file {shown!r}: {reason}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{shown}:{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if node is None or data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}:1: the file must be a mapping of sections ({', '.join(SettingsFile.model_fields)}),"
            f" got {type(data).__name__} {data!r}"
        )
    lines = _key_lines(node, (), shown)
    notes = _drop_retired(data, lines, shown)
    try:
        parsed = SettingsFile.model_validate(data)
    except ValidationError as exc:
        problems = sorted(
            (_line_of(tuple(str(part) for part in error["loc"]), lines), *explain(error, SettingsFile))
            for error in exc.errors()
        )
        message = "\n".join(f"{shown}:{line}: {where}: {problem}" for line, where, problem in problems)
        raise ConfigError(message) from None

    found: dict[str, tuple[Any, int]] = {}
    for key_path, field_name in FILE_KEYS.items():
        is_set, value = _lookup(parsed, key_path)
        if is_set:
            found[field_name] = (value, lines[key_path])
    if parsed.agent_pool is not None:
        found["agent_pool"] = (
            {name: AgentOverrides(max_concurrent=entry.max_concurrent, priority=entry.priority)
             for name, entry in parsed.agent_pool.items()},
            lines[("agent_pool",)],
        )
    if parsed.models is not None:
        found["models"] = (parsed.models.model_dump(), lines[("models",)])
    if parsed.qa is not None and parsed.qa.commands is not None:
        found["qa_commands"] = (parsed.qa.commands.model_dump(exclude_none=True), lines[("qa", "commands")])
    if notes:
        found["config_notes"] = (tuple(note for _, note in notes), notes[0][0])
    return found


def _drop_retired(data: dict[str, Any], lines: Mapping[tuple[str, ...], int], shown: str) -> list[tuple[int, str]]:
    """Take the retired keys out of the file's data before validation; (line, note) for each one found."""
    notes = []
    for (section, key), why in RETIRED_KEYS.items():
        values = data.get(section)
        if isinstance(values, dict) and key in values:
            del values[key]
            line = lines[(section, key)]
            notes.append((line, f"{shown}:{line}: {section}.{key} is no longer read ({why}); remove it from the file"))
    return sorted(notes)


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _lookup(model: BaseModel, key_path: tuple[str, ...]) -> tuple[bool, Any]:
    """Whether the file itself set this key (a default does not count), and its value."""
    value: Any = model
    for key in key_path:
        if not isinstance(value, BaseModel) or key not in value.model_fields_set:
            return False, None
        value = getattr(value, key)
    return True, value


def _key_lines(node: yaml.Node, prefix: tuple[str, ...], shown: str) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line of the key, for every mapping key in the document."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*prefix, str(key_node.value))
            line = key_node.start_mark.line + 1
            if key_path in lines:
                raise ConfigError(
                    f"{shown}:{line}: {'.'.join(key_path)}: duplicate key (first on line {lines[key_path]});"
                    " keep one of them"
                )
            lines[key_path] = line
            lines.update(_key_lines(value_node, key_path, shown))
    return lines


def _line_of(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _env_value(variable: str, raw: str, section: type[BaseModel], key: str) -> Any:
    """An environment variable's value, held to the same rules as the file key it stands for."""
    try:
        return getattr(section.model_validate({key: raw}), key)
    except ValidationError as exc:
        problem = explain(exc.errors()[0], section)[1].removesuffix(f", got {raw!r}")
        raise ConfigError(f"env {variable}={raw!r}: {problem}; fix it or unset {variable}") from None
