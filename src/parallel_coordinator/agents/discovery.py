"""Find agent files, turn each into an AgentSpec, and merge them into a catalog.

Every file that cannot be used, or was repaired on the way, becomes a Diagnostic: never a crash.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from parallel_coordinator.agents.bounded_read import UnreadableFile, read_regular_file
from parallel_coordinator.agents.frontmatter import read_front_matter
from parallel_coordinator.agents.plugins import PluginSources, default_plugins, plugin_named, with_plugin_dirs
from parallel_coordinator.agents.scan import Stamp, scan_agent_dirs
from parallel_coordinator.agents.spec import (
    AgentCatalog,
    AgentSpec,
    Diagnostic,
    Priority,
    RunnerKind,
    SourceKind,
)
from parallel_coordinator.errors import AgentFileError, ConfigError, shortened

MAX_AGENT_FILE_BYTES = 1024 * 1024
AGENT_DIRS_ENV = "PCOORD_AGENT_DIRS"
# Opt-in, not default: offline analysers in every listing would take routed subtasks from a user's own collection.
BUNDLED_AGENTS_ENV = "PCOORD_BUNDLED_AGENTS"
BUNDLED_AGENTS_DIR = Path(__file__).parent / "bundled"
_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})
# Linux's MAX_ARG_STRLEN: exec refuses a longer argument (E2BIG), so such an agent could never start.
MAX_ARG_BYTES = 128 * 1024 - 1
# The runners that pass the body as one argument (gemini's travels on stdin, a command's is unused).
_BODY_IN_ARGV = frozenset({"claude", "codex"})

# Front-matter keys we interpret; everything else lands in AgentSpec.extra untouched.
_KNOWN_KEYS = frozenset(
    {
        "name",
        "description",
        "tools",
        "disallowedTools",
        "model",
        "runner",
        "command",
        "max_concurrent",
        "priority",
        "fallback_agents",
        "timeout",
        "stall_timeout",
        "isolation",
        "pass_env",
    }
)


class _Invalid(ValueError):
    """An optional key's value we cannot use; the key is dropped and the reason reported."""


class _Unusable(_Invalid):
    """A value that leaves no right way to run the agent: the file is skipped, not run some other way."""


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _unpassable(text: str) -> str | None:
    """Why exec could never be given this string, or None: what subprocess refuses before any spawn."""
    if "\0" in text:
        return "holds a NUL byte, which no program can be given"
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        return "holds a character this system cannot pass to a program (a lone surrogate)"
    return None


def _unpassable_value(value: Any, where: str) -> str | None:
    """The first string in a front-matter value (lists and mappings included) that no program could be given."""
    if isinstance(value, str):
        reason = _unpassable(value)
        return f"{where} ({_shown(value)}) {reason}" if reason else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _unpassable_value(item, f"{where}[{key!r}]" if isinstance(value, dict) else f"{where}[{key}]")
        if found:
            return found
    return None


def _string_list(value: Any, *, key: str) -> list[str]:
    """A comma string ("Read, Grep") or a YAML list of strings, as Claude Code accepts for `tools`."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise _Invalid(f"{key!r} must be a comma-separated string or a list of strings, got {value!r}")


def _text(value: Any, *, key: str) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Invalid(f"{key!r} must be a string, got {value!r}")


def _runner(value: Any) -> RunnerKind:
    kinds: tuple[RunnerKind, ...] = get_args(RunnerKind)
    offered = f"this version runs {', '.join(kinds[:-1])} and {kinds[-1]} agents"
    if not isinstance(value, str):
        raise _Unusable(f"'runner' must be one of {', '.join(kinds)}, got {_shown(value)}")
    wanted = value.strip().lower()
    for kind in kinds:
        if wanted == kind:
            return kind
    close = difflib.get_close_matches(wanted, kinds, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise _Unusable(f"unknown runner {_shown(value)}{hint} ({offered})")


def _command(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise _Invalid(f"'command' {value!r} cannot be split into arguments: {exc}") from None
    elif isinstance(value, list) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        # `[sleep, 5]` is an argv too: YAML makes the 5 an int.
        argv = [str(item) for item in value]
    else:
        raise _Invalid(f"'command' must be an argv list of strings or a command line, got {value!r}")
    if not argv or not argv[0].strip():
        raise _Invalid(f"'command' names no program: {_shown(value)}")
    for index, element in enumerate(argv):
        size = len(os.fsencode(element))  # encodable: the front-matter check ran first
        if size > MAX_ARG_BYTES:
            raise _Invalid(
                f"command[{index}] is {size} bytes, over the {MAX_ARG_BYTES + 1} a program can be given in one "
                "argument; pass large text in a file"
            )
    return argv


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _max_concurrent(value: Any) -> int:
    number = _number(value)
    if number is None or not number.is_integer() or number < 1:
        raise _Invalid(f"'max_concurrent' must be a whole number of at least 1, got {value!r}")
    return int(number)


def _priority(value: Any) -> Priority:
    levels: tuple[Priority, ...] = get_args(Priority)
    for level in levels:
        if isinstance(value, str) and value.strip().lower() == level:
            return level
    raise _Invalid(f"'priority' must be one of {', '.join(levels)}, got {value!r}")


def _seconds(key: str) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        number = _number(value)
        if number is None or not math.isfinite(number) or number <= 0:
            raise _Invalid(f"'{key}' must be a number of seconds greater than 0, got {value!r}")
        return number

    return convert


_timeout = _seconds("timeout")


def _model(value: Any) -> str:
    model = _text(value, key="model")
    if not model:
        raise _Invalid("'model' is empty")
    return model


# Optional keys: front-matter name -> (AgentSpec field, converter). A bad value is dropped, not fatal.
_OPTIONAL: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "description": ("description", lambda value: _text(value, key="description")),
    "tools": ("tools", lambda value: _string_list(value, key="tools")),
    "disallowedTools": ("disallowed_tools", lambda value: _string_list(value, key="disallowedTools")),
    "model": ("model", _model),
    "runner": ("runner", _runner),
    "command": ("command", _command),
    "max_concurrent": ("max_concurrent", _max_concurrent),
    "priority": ("priority", _priority),
    "fallback_agents": ("fallback_agents", lambda value: _string_list(value, key="fallback_agents")),
    "timeout": ("timeout", _timeout),
    "stall_timeout": ("stall_timeout", _seconds("stall_timeout")),
    "isolation": ("isolation", lambda value: _text(value, key="isolation") or None),
    "pass_env": ("pass_env", lambda value: _string_list(value, key="pass_env")),
}


def _read_agent_bytes(path: Path) -> bytes:
    try:
        return read_regular_file(path, MAX_AGENT_FILE_BYTES, "an agent file")
    except FileNotFoundError as exc:  # removed between the walk and the read
        raise AgentFileError(f"cannot open the file: {exc.strerror or exc}") from None
    except UnreadableFile as exc:
        raise AgentFileError(str(exc)) from None


def _name(data: dict[str, Any], fallback: str | None) -> str:
    if "name" not in data and fallback:
        return fallback
    if "name" not in data:
        raise AgentFileError("no 'name' in the front matter (Claude Code identifies agents by name)")
    name = data["name"]
    if not isinstance(name, str):
        raise AgentFileError(f"'name' must be a string, got {type(name).__name__} {name!r}")
    if not name.strip():
        raise AgentFileError("'name' is empty")
    return name.strip()


def parse_agent_file(
    path: Path, *, source: SourceKind, root: Path
) -> tuple[AgentSpec | None, list[Diagnostic]]:
    """Read one agent file: the spec (None when the file is skipped) and its diagnostics.

    A plugin's agent without a `name` is named for its file, as Claude Code names it; an own agent needs one."""
    where = str(path)
    repairs: list[str] = []
    try:
        try:
            front = read_front_matter(_read_agent_bytes(path))
        except OSError as exc:
            raise AgentFileError(f"cannot read the file: {exc.strerror or exc}") from None
        repairs = list(front.repairs)
        name = _name(front.data, path.stem if source == "plugin" else None)
    except AgentFileError as exc:
        context = f" ({'; '.join(repairs)})" if repairs else ""
        return None, [Diagnostic(path=where, problem=f"skipped: {exc}{context}")]

    diagnostics = [Diagnostic(path=where, problem=f"repaired: {note}", skipped=False) for note in repairs]

    def skipped(problem: str) -> tuple[None, list[Diagnostic]]:
        return None, [*diagnostics, Diagnostic(path=where, problem=f"skipped: agent {name!r}: {problem}")]

    # A \0 escape in YAML is a NUL byte all the same: refused here as in the raw file, not at every spawn.
    for key, value in front.data.items():
        unpassable = _unpassable_value(value, str(key))
        if unpassable:
            return skipped(f"{unpassable}; remove it")

    fields: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    for key, (field_name, convert) in _OPTIONAL.items():
        if key not in front.data or front.data[key] is None:
            continue  # absent and `key:` with no value both mean "not set"
        try:
            fields[field_name] = convert(front.data[key])
        except _Unusable as exc:
            return skipped(str(exc))
        except _Invalid as exc:
            invalid[key] = str(exc)

    runs_command = fields.get("runner") == "command"
    diagnostics += [
        Diagnostic(path=where, problem=f"repaired: {problem}; the key was ignored", skipped=False)
        for key, problem in invalid.items()
        if not (runs_command and key == "command")  # that one is the reason the file is skipped, below
    ]
    if runs_command and not fields.get("command"):
        why = invalid.get("command", "there is none")
        return skipped(
            f"it has 'runner: command' but no usable 'command' ({why}); give an argv list such as [python, agent.py]"
        )
    body = front.body.strip()
    runner = fields.get("runner", "claude")
    if runner in _BODY_IN_ARGV and len(body.encode()) > MAX_ARG_BYTES:
        return skipped(
            f"its body is {len(body.encode())} bytes, over the {MAX_ARG_BYTES + 1} that one argument to a program "
            f"can hold, and the {runner} runner passes it as the system prompt; shorten it"
        )

    try:
        spec = AgentSpec(
            name=name,
            body=body,
            path=path,
            source=source,
            root=root,
            extra={key: value for key, value in front.data.items() if key not in _KNOWN_KEYS},
            **fields,
        )
    except ValidationError as exc:  # a backstop: the converters above should make this unreachable
        return None, [*diagnostics, Diagnostic(path=where, problem=f"skipped: {exc.errors()[0]['msg']}")]
    return spec, diagnostics


def bundled_agents_on() -> bool:
    """PCOORD_BUNDLED_AGENTS: on or off; any other value is refused, naming it (a typo must not mean off)."""
    value = os.environ.get(BUNDLED_AGENTS_ENV, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(
        f"{BUNDLED_AGENTS_ENV}={shortened(os.environ[BUNDLED_AGENTS_ENV])} is neither on nor off:"
        " set it to 1 to use the bundled agents, or 0 (or unset it) not to"
    )


def default_agent_dirs(cwd: Path | None = None) -> list[tuple[Path, SourceKind]]:
    """Where agents are looked for, lowest precedence first: the bundled agents (only with
    PCOORD_BUNDLED_AGENTS=1, and below everything so a user's agent of the same name wins), user,
    project, then PCOORD_AGENT_DIRS.

    The project directory and relative PCOORD_AGENT_DIRS entries are taken from `cwd` (default: the
    working directory).
    """
    base = cwd if cwd is not None else Path.cwd()
    dirs: list[tuple[Path, SourceKind]] = [(BUNDLED_AGENTS_DIR, "bundled")] if bundled_agents_on() else []
    # No HOME and no passwd entry: there is no user directory to scan.
    with contextlib.suppress(RuntimeError):
        dirs.append((Path.home() / ".claude" / "agents", "user"))
    dirs.append((base / ".claude" / "agents", "project"))
    for entry in os.environ.get(AGENT_DIRS_ENV, "").split(os.pathsep):
        if entry.strip():
            dirs.append((base / Path(entry.strip()).expanduser(), "env"))
    return dirs


def discover_agents(dirs: Sequence[tuple[Path, SourceKind]] | None = None) -> AgentCatalog:
    """Scan the agent directories (when None: default_agent_dirs() and the enabled Claude Code plugins'), within
    scan.py's bounds, parsing every file; later sources win a name clash. The server reads through CatalogCache."""
    plugins = default_plugins() if dirs is None else PluginSources()
    by_dir = plugins.by_dir()

    def parse(path: Path, source: SourceKind, root: Path, _stamp: Stamp) -> tuple[AgentSpec | None, list[Diagnostic]]:
        spec, diagnostics = parse_agent_file(path, source=source, root=root)
        return plugin_named(spec, root, by_dir), diagnostics

    catalog = scan_agent_dirs(with_plugin_dirs(default_agent_dirs(), plugins) if dirs is None else dirs, parse).catalog
    catalog.diagnostics[:0] = plugins.diagnostics
    return catalog
