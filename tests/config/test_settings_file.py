"""The configuration file: where it is found, how it maps to Settings, its errors, and env overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parallel_coordinator.config.file import load_settings
from parallel_coordinator.config.settings import AgentOverrides, Settings
from parallel_coordinator.errors import ConfigError, CoordinatorError

SEED = """\
parallel_config:
  max_concurrent_agents: 32
  task_timeout: 120
  retry_attempts: 4
  load_balancing: "intelligent"
  progress_update_interval: 2
resource_limits:
  max_memory_per_agent: "1GB"
  max_cpu_usage: 70
  token_budget_per_agent: 40000
monitoring:
  performance_logging: false
  metrics_collection: true
  alert_thresholds: {error_rate: 0.1, memory_percent: 85, min_throughput_per_min: null}
agent_pool:
  security-auditor: {max_concurrent: 2, priority: critical}
planner: null
synthesizer: merger
models: {simple: haiku, default: sonnet, critical: opus}
"""

PROJECT = Path(".claude") / "parallel-coordinator.yaml"
USER = Path(".claude") / "agents" / "system" / "parallel_config.yaml"
ENV_VARIABLES = ("PCOORD_CONFIG", "PCOORD_STATE_DIR", "PCOORD_MAX_CPU_USAGE", "PCOORD_PERFORMANCE_LOGGING",
                 "PCOORD_POOL_SIZE", "PCOORD_TASK_TIMEOUT", "PCOORD_RETRY_ATTEMPTS", "PCOORD_BACKEND",
                 "PCOORD_DASK_SCHEDULER", "PCOORD_DASK_WORKERS", "PCOORD_DASK_CALLBACK_HOST",
                 "PCOORD_RETENTION_DAYS", "PCOORD_RETENTION_MB", "PCOORD_ROUTING_RERANK")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the working directory, a home of its own, and no PCOORD_* settings."""
    for variable in ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def config_error(text: str) -> str:
    write(PROJECT, text)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


def test_the_seed_example_loads_and_maps_to_settings(project: Path) -> None:
    write(PROJECT, SEED)
    settings, sources = load_settings()
    assert settings.config_file == project / PROJECT
    assert (settings.pool_size, settings.task_timeout_s, settings.retry_attempts) == (32, 120.0, 4)
    assert settings.progress_update_interval_s == 2.0
    assert (settings.max_memory_per_agent, settings.max_cpu_usage) == ("1GB", 70)
    assert settings.token_budget_per_agent == 40000
    assert settings.performance_logging is False
    # load_balancing and metrics_collection are accepted but no longer read: each gets a note, not a setting.
    assert [note.split(" is no longer read")[0] for note in settings.config_notes] == [
        ".claude/parallel-coordinator.yaml:5: parallel_config.load_balancing",
        ".claude/parallel-coordinator.yaml:13: monitoring.metrics_collection",
    ]
    assert (settings.alert_max_error_rate, settings.alert_max_memory_percent) == (0.1, 85)
    assert settings.alert_min_throughput_per_min is None
    assert settings.agent_pool == {"security-auditor": AgentOverrides(max_concurrent=2, priority="critical")}
    assert (settings.planner, settings.synthesizer) == (None, "merger")
    assert settings.models == {"simple": "haiku", "default": "sonnet", "critical": "opus"}
    assert settings.alert_limits.max_cpu_percent == 70
    assert sources["pool_size"] == ".claude/parallel-coordinator.yaml:2"
    assert sources["max_cpu_usage"] == ".claude/parallel-coordinator.yaml:9"
    assert sources["alert_max_memory_percent"] == ".claude/parallel-coordinator.yaml:14"
    assert sources["agent_pool"] == ".claude/parallel-coordinator.yaml:15"
    assert sources["synthesizer"] == ".claude/parallel-coordinator.yaml:18"
    assert sources["state_dir"] == sources["result_chars"] == "default"
    assert set(sources) == set(Settings.__dataclass_fields__)


def test_without_a_file_every_setting_is_its_default_and_matches_settings(project: Path) -> None:
    settings, sources = load_settings()
    assert settings == Settings()
    assert settings.config_file is None
    assert set(sources.values()) == {"default"}


def test_a_key_the_file_leaves_out_keeps_its_default(project: Path) -> None:
    write(PROJECT, """\
        parallel_config:
          retry_attempts: 5
        monitoring:
        models: {critical: opus-4}
    """)
    settings, sources = load_settings()
    assert (settings.retry_attempts, settings.pool_size, settings.performance_logging) == (5, 64, True)
    assert settings.models == {"simple": "haiku", "default": "sonnet", "critical": "opus-4"}
    assert sources["pool_size"] == sources["performance_logging"] == "default"
    assert sources["models"] == ".claude/parallel-coordinator.yaml:4"


def test_the_cache_warmup_keys_set_its_default_and_its_wait_and_a_session_may_still_choose(project: Path) -> None:
    from parallel_coordinator.engine.policy import options_with_defaults
    from parallel_coordinator.schemas.inputs import CoordinateOptions

    write(PROJECT, """\
        parallel_config:
          cache_warmup: false
          cache_warmup_wait: 2.5
    """)
    settings, sources = load_settings()

    assert (settings.cache_warmup, settings.cache_warmup_wait_s) == (False, 2.5)
    assert sources["cache_warmup_wait_s"] == ".claude/parallel-coordinator.yaml:3"
    assert options_with_defaults(None, settings).cache_warmup is False
    assert options_with_defaults(CoordinateOptions(cache_warmup=True), settings).cache_warmup is True
    assert options_with_defaults(None, Settings()).cache_warmup is True, "on unless configured off"
    too_long = config_error("parallel_config:\n  cache_warmup_wait: 90\n")
    assert "cache_warmup_wait: must be between 0 and 60, got 90" in too_long


def test_the_routing_rerank_key_and_its_variable_turn_the_planners_re_rank_off(project: Path) -> None:
    assert Settings().routing_rerank is True, "on unless configured off"
    write(PROJECT, """\
        parallel_config:
          routing_rerank: false
    """)
    settings, sources = load_settings()
    assert settings.routing_rerank is False and sources["routing_rerank"] == ".claude/parallel-coordinator.yaml:2"
    settings, sources = load_settings(environ={"PCOORD_ROUTING_RERANK": "true", "HOME": str(project)})
    assert settings.routing_rerank is True and sources["routing_rerank"] == "env PCOORD_ROUTING_RERANK"
    assert "routing_rerank" in config_error("parallel_config:\n  routing_rerank: sometimes\n")


def test_an_empty_file_is_all_defaults(project: Path) -> None:
    write(PROJECT, "# nothing configured yet\n")
    settings, _ = load_settings()
    assert settings.config_file == project / PROJECT
    assert settings.pool_size == 64


def test_pcoord_config_comes_before_the_project_file_which_comes_before_the_user_file(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = write(tmp_path / "home" / USER, "parallel_config: {retry_attempts: 7}\n")
    assert load_settings()[0].retry_attempts == 7
    assert load_settings()[1]["retry_attempts"] == f"{user}:1"

    write(PROJECT, "parallel_config: {retry_attempts: 6}\n")
    assert load_settings()[0].retry_attempts == 6

    explicit = write(tmp_path / "elsewhere.yaml", "\n\nparallel_config: {retry_attempts: 5}\n")
    monkeypatch.setenv("PCOORD_CONFIG", str(explicit))
    settings, sources = load_settings()
    assert (settings.retry_attempts, settings.config_file) == (5, explicit)
    assert sources["retry_attempts"] == f"{explicit}:3"
    assert sources["config_file"] == "env PCOORD_CONFIG"


def test_a_relative_pcoord_config_is_read_from_the_working_directory(project: Path) -> None:
    write(project / "conf" / "pc.yaml", "planner: decomposer\n")
    settings, sources = load_settings(environ={"PCOORD_CONFIG": "conf/pc.yaml", "HOME": str(project)})
    assert settings.planner == "decomposer"
    assert sources["planner"] == "conf/pc.yaml:1"


def test_pcoord_config_naming_a_missing_file_is_an_error_naming_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(PROJECT, SEED)
    monkeypatch.setenv("PCOORD_CONFIG", "/nowhere/pc.yaml")
    with pytest.raises(ConfigError, match=r"PCOORD_CONFIG='/nowhere/pc.yaml'.*no file at '/nowhere/pc.yaml'"):
        load_settings()


def test_an_unknown_key_is_named_with_its_line_and_the_key_it_resembles(project: Path) -> None:
    message = config_error("""\
        parallel_config:
          max_concurrent_agents: 8
          max_concurent_agents: 8
    """)
    assert message == (
        ".claude/parallel-coordinator.yaml:3: parallel_config.max_concurent_agents: unknown key;"
        " did you mean 'max_concurrent_agents'?"
    )
    assert "planer: unknown key; did you mean 'planner'?" in config_error("planer: decomposer\n")
    assert "known keys: error_rate, memory_percent" in config_error(
        "monitoring:\n  alert_thresholds:\n    zzz: 1\n"
    )


def test_a_value_out_of_range_is_named_with_its_line_and_the_constraint(project: Path) -> None:
    message = config_error(SEED.replace("max_cpu_usage: 70", "max_cpu_usage: 250"))
    assert message == (
        ".claude/parallel-coordinator.yaml:9: resource_limits.max_cpu_usage: must be between 1 and 100, got 250"
    )
    assert isinstance(ConfigError(message), CoordinatorError)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("parallel_config: {task_timeout: 0}", "task_timeout: must be more than 0 and at most 86400, got 0"),
        ("parallel_config: {max_concurrent_agents: yes}", "max_concurrent_agents: must be a number, not true or false"),
        ("parallel_config: {retry_attempts: many}", "retry_attempts: must be a valid integer"),
        ("resource_limits: {max_memory_per_agent: lots}", "cannot read memory size 'lots'"),
        ("agent_pool: {auditor: {priority: urgent}}", "agent_pool.auditor.priority: must be 'critical'"),
        ("agent_pool: {security-auditor: {max_concurrent: 0}}", "max_concurrent: must be at least 1, got 0"),
        ("monitoring: 5", ":1: monitoring: must be a mapping of keys, got 5"),
        ("execution: {backend: ray}", "execution.backend: must be 'local' or 'dask', got 'ray'"),
        ("execution: {scheduler: 'host:8786'}",
         "execution.scheduler: must be an address like tcp://host:8786, got 'host:8786'"),
        ("retention: {max_age_days: -1}", ":1: retention.max_age_days: must be at least 0, got -1"),
        ("retention: {max_total_gb: 2}", "retention.max_total_gb: unknown key; did you mean 'max_total_mb'?"),
    ],
)
def test_a_bad_value_is_named_with_what_it_should_be(project: Path, line: str, expected: str) -> None:
    assert expected in config_error(line + "\n")


def test_every_problem_in_the_file_is_reported_in_line_order(project: Path) -> None:
    message = config_error("""\
        resource_limits:
          max_cpu_usage: 0
        monitoring:
          alert_thresholds: {error_rate: 2}
    """)
    assert [line.split(": ")[0] for line in message.splitlines()] == [
        ".claude/parallel-coordinator.yaml:2", ".claude/parallel-coordinator.yaml:4",
    ]


def test_broken_yaml_a_duplicate_key_and_a_non_mapping_are_errors_with_a_line(project: Path) -> None:
    assert config_error("parallel_config:\n  retry_attempts: [1,\n").startswith(".claude/parallel-coordinator.yaml:3:")
    assert config_error("planner: a\nplanner: b\n") == (
        ".claude/parallel-coordinator.yaml:2: planner: duplicate key (first on line 1); keep one of them"
    )
    assert config_error("- a list\n").startswith(".claude/parallel-coordinator.yaml:1: the file must be a mapping")


def test_environment_variables_override_the_file_and_sources_say_so(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(PROJECT, SEED)
    monkeypatch.setenv("PCOORD_POOL_SIZE", "4")
    monkeypatch.setenv("PCOORD_TASK_TIMEOUT", "30.5")
    monkeypatch.setenv("PCOORD_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("PCOORD_MAX_CPU_USAGE", "95")
    monkeypatch.setenv("PCOORD_PERFORMANCE_LOGGING", "1")
    monkeypatch.setenv("PCOORD_STATE_DIR", str(tmp_path / "state"))
    settings, sources = load_settings()
    assert (settings.pool_size, settings.task_timeout_s, settings.retry_attempts) == (4, 30.5, 2)
    assert (settings.max_cpu_usage, settings.performance_logging, settings.state_dir) == (95, True, tmp_path / "state")
    assert sources["pool_size"] == "env PCOORD_POOL_SIZE"
    assert sources["performance_logging"] == "env PCOORD_PERFORMANCE_LOGGING"
    assert sources["state_dir"] == "env PCOORD_STATE_DIR"
    assert sources["token_budget_per_agent"] == ".claude/parallel-coordinator.yaml:10"


def test_the_execution_section_and_its_variables_choose_the_dask_backend(project: Path) -> None:
    write(PROJECT, """\
        execution:
          backend: dask
          scheduler: tcp://10.0.0.5:8786
          local_workers: 3
    """)
    settings, sources = load_settings()
    assert settings.backend == "dask"
    assert (settings.dask_scheduler, settings.dask_local_workers) == ("tcp://10.0.0.5:8786", 3)
    assert sources["dask_scheduler"] == ".claude/parallel-coordinator.yaml:3"
    settings, sources = load_settings(environ={
        "HOME": str(project), "PCOORD_BACKEND": "local", "PCOORD_DASK_CALLBACK_HOST": "10.0.0.9"})
    assert (settings.backend, settings.dask_callback_host) == ("local", "10.0.0.9")
    assert sources["backend"] == "env PCOORD_BACKEND"


def test_the_retention_section_and_its_variables_set_the_limits_and_zero_or_null_turns_one_off(project: Path) -> None:
    write(PROJECT, """\
        monitoring: {performance_logging: true}
        retention:
          max_age_days: 7.5
          max_total_mb: null
    """)
    settings, sources = load_settings()
    assert (settings.retention_days, settings.retention_mb) == (7.5, None)
    assert sources["retention_days"] == ".claude/parallel-coordinator.yaml:3"
    assert sources["retention_mb"] == ".claude/parallel-coordinator.yaml:4"
    settings, sources = load_settings(environ={
        "HOME": str(project), "PCOORD_RETENTION_DAYS": "0", "PCOORD_RETENTION_MB": "512"})
    assert (settings.retention_days, settings.retention_mb) == (0, 512)
    assert sources["retention_mb"] == "env PCOORD_RETENTION_MB"
    assert (Settings().retention_days, Settings().retention_mb) == (30, 2048)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PCOORD_MAX_CPU_USAGE", "250", "env PCOORD_MAX_CPU_USAGE='250': must be between 1 and 100"),
        ("PCOORD_POOL_SIZE", "lots", "env PCOORD_POOL_SIZE='lots': must be a valid integer"),
        ("PCOORD_TASK_TIMEOUT", "-1", "env PCOORD_TASK_TIMEOUT='-1': must be more than 0"),
        ("PCOORD_RETRY_ATTEMPTS", "0", "env PCOORD_RETRY_ATTEMPTS='0': must be between 1 and 20"),
        ("PCOORD_PERFORMANCE_LOGGING", "maybe", "env PCOORD_PERFORMANCE_LOGGING='maybe': must be a valid boolean"),
        ("PCOORD_BACKEND", "ray", "env PCOORD_BACKEND='ray': must be 'local' or 'dask'"),
        ("PCOORD_DASK_WORKERS", "0", "env PCOORD_DASK_WORKERS='0': must be between 1 and 64"),
        ("PCOORD_RETENTION_DAYS", "soon", "env PCOORD_RETENTION_DAYS='soon': must be a valid number"),
        ("PCOORD_RETENTION_MB", "-5", "env PCOORD_RETENTION_MB='-5': must be at least 0"),
    ],
)
def test_a_bad_environment_value_is_an_error_naming_the_variable_and_value(
    project: Path, variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: value, "HOME": str(project)})
    assert str(caught.value).startswith(expected)
    assert str(caught.value).endswith(f"fix it or unset {variable}")


def test_a_key_no_longer_read_loads_with_a_note_naming_it_whatever_its_value(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(PROJECT, """\
        parallel_config:
          load_balancing: round_robin
          retry_attempts: 2
        monitoring: {metrics_collection: [not, a, bool]}
    """)
    with caplog.at_level("WARNING", logger="parallel_coordinator.config.file"):
        settings, sources = load_settings()
    assert settings.retry_attempts == 2
    assert settings.config_notes == (
        ".claude/parallel-coordinator.yaml:2: parallel_config.load_balancing is no longer read (tasks always start"
        " critical path first, within agent_pool limits, max_concurrent_agents and max_cpu_usage);"
        " remove it from the file",
        ".claude/parallel-coordinator.yaml:4: monitoring.metrics_collection is no longer read (metrics are worked"
        " out from the state database when asked for; monitoring.performance_logging turns off the event log, and"
        " /metrics is served only with `pcoord serve --prometheus`); remove it from the file",
    )
    assert sources["config_notes"] == ".claude/parallel-coordinator.yaml:2"
    assert caplog.records == []  # reading settings logs nothing: `pcoord serve` says it once as it starts
    assert not hasattr(settings, "load_balancing") and not hasattr(settings, "metrics_collection")


def test_a_misspelt_retired_key_is_still_an_unknown_key(project: Path) -> None:
    message = config_error("parallel_config:\n  load_balancer: intelligent\n")
    assert "parallel_config.load_balancer: unknown key" in message


def pcoord_config(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in ENV_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "parallel_coordinator", "config", *args],
        cwd=cwd, env={**clean, "COLUMNS": "200", **env}, capture_output=True, text=True, timeout=60,
    )


def test_pcoord_config_json_shows_each_value_and_where_it_came_from(project: Path, tmp_path: Path) -> None:
    write(PROJECT, SEED)
    done = pcoord_config(project, "--json", HOME=str(tmp_path / "home"), PCOORD_POOL_SIZE="16")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["config_file"] == str(project / PROJECT)
    assert shown["settings"]["pool_size"] == {"value": 16, "source": "env PCOORD_POOL_SIZE"}
    assert shown["settings"]["max_cpu_usage"] == {"value": 70, "source": ".claude/parallel-coordinator.yaml:9"}
    assert shown["settings"]["agent_pool"]["value"] == {
        "security-auditor": {"max_concurrent": 2, "priority": "critical"},
    }
    assert shown["settings"]["result_chars"] == {"value": 4000, "source": "default"}


def test_pcoord_config_prints_a_table_and_reports_a_bad_file_on_stderr(project: Path, tmp_path: Path) -> None:
    write(PROJECT, SEED)
    done = pcoord_config(project, HOME=str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert "max_cpu_usage" in done.stdout
    assert ".claude/parallel-coordinator.yaml:9" in done.stdout

    write(PROJECT, "resource_limits: {max_cpu_usage: 250}\n")
    done = pcoord_config(project, "--json", HOME=str(tmp_path / "home"))
    assert done.returncode == 1
    assert done.stdout == ""
    assert "resource_limits.max_cpu_usage: must be between 1 and 100, got 250" in " ".join(done.stderr.split())


def test_pcoord_config_shows_a_note_for_each_key_it_no_longer_reads(project: Path, tmp_path: Path) -> None:
    write(PROJECT, SEED)
    done = pcoord_config(project, "--json", HOME=str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert [note.split(" is no longer read")[0] for note in shown["notes"]] == [
        ".claude/parallel-coordinator.yaml:5: parallel_config.load_balancing",
        ".claude/parallel-coordinator.yaml:13: monitoring.metrics_collection",
    ]
    assert "config_notes" not in shown["settings"] and "load_balancing" not in shown["settings"]
    assert "no longer read" not in done.stderr  # shown once, in the output, not logged besides

    done = pcoord_config(project, HOME=str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    table = " ".join(done.stdout.split())
    assert "note: .claude/parallel-coordinator.yaml:5: parallel_config.load_balancing is no longer read" in table
    assert "note: .claude/parallel-coordinator.yaml:13: monitoring.metrics_collection is no longer read" in table


def test_pcoord_serve_logs_each_key_it_no_longer_reads_once_as_it_starts(project: Path, tmp_path: Path) -> None:
    write(PROJECT, SEED)
    clean = {key: value for key, value in os.environ.items() if key not in ENV_VARIABLES}
    done = subprocess.run(  # stdin at its end: the server starts, finds no client and stops
        [sys.executable, "-m", "parallel_coordinator", "serve"], cwd=project, stdin=subprocess.DEVNULL,
        env={**clean, "HOME": str(tmp_path / "home"), "PCOORD_STATE_DIR": str(tmp_path / "state")},
        capture_output=True, text=True, timeout=60,
    )
    assert done.stdout == ""  # stdout is the protocol's
    assert done.stderr.count("parallel_config.load_balancing is no longer read") == 1
    assert done.stderr.count("monitoring.metrics_collection is no longer read") == 1


@pytest.mark.anyio
async def test_the_configuration_file_shapes_defaults_and_agents_of_a_real_coordinator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parallel_coordinator.engine.coordinator import Coordinator
    from parallel_coordinator.schemas.inputs import CoordinateOptions

    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "echo.md").write_text("---\nname: echo\nrunner: command\ncommand: [\"true\"]\n---\nx\n")
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "parallel-coordinator.yaml").write_text(
        "parallel_config:\n  retry_attempts: 1\n  max_concurrent_agents: 8\n"
        "agent_pool:\n  echo: {max_concurrent: 2, priority: critical}\nsynthesizer: echo\n"
    )
    monkeypatch.setenv("PCOORD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PCOORD_AGENT_DIRS", str(agents))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings, _ = load_settings(cwd=tmp_path)
    async with Coordinator(settings) as coordinator:
        echo = (await coordinator.catalog()).get("echo")
        assert echo is not None and (echo.max_concurrent, echo.priority) == (2, "critical")
        options = coordinator.with_defaults(CoordinateOptions.model_validate({"max_agents": 3}))
        assert (options.retry_attempts, options.max_agents, options.synthesizer) == (1, 3, "echo")
        assert coordinator.with_defaults(None).max_agents == 8


def test_the_qa_section_sets_the_default_checks_and_the_commands_of_the_configured_ones(project: Path) -> None:
    write(PROJECT, """\
        qa:
          default: [syntax_check, security_scan]
          commands:
            performance_test: make bench
            documentation_check: [mkdocs, build, --strict]
    """)
    settings, sources = load_settings()
    assert settings.qa_default == ("syntax_check", "security_scan")
    assert settings.qa_commands == {
        "performance_test": "make bench", "documentation_check": ["mkdocs", "build", "--strict"]}
    assert sources["qa_default"] == ".claude/parallel-coordinator.yaml:2"
    assert sources["qa_commands"] == ".claude/parallel-coordinator.yaml:3"
    assert (Settings().qa_default, Settings().qa_commands) == ((), {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qa: {commands: {benchmark: make bench}}", "qa.commands.benchmark"),
        ("qa: {commands: {performance_test: ''}}", "qa.commands.performance_test: must be a command"),
        ("qa: {default: [syntax_check, syntax_check]}", "names 'syntax_check' more than once"),
    ],
)
def test_a_bad_qa_value_is_an_error_naming_the_key(project: Path, text: str, expected: str) -> None:
    message = config_error(text + "\n")
    assert message.startswith(".claude/parallel-coordinator.yaml:1: ") and expected in message
