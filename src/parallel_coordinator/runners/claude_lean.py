"""A lean launch: what a spawned `claude` agent loads besides its own prompt, and nothing more.

No MCP server unless its agent file names it (`mcpServers`, resolved against the user's Claude Code
configuration), never Parallel Coordinator itself; the user's settings only (`settingSources`).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_coordinator.errors import RunnerUnavailableError, shortened

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

SETTING_SOURCES = ("user", "project", "local")
# The user's settings hold the login when it is not an OAuth login or ANTHROPIC_API_KEY (apiKeyHelper, a
# provider's env); project and local settings bring the project's CLAUDE.md, hooks and permissions.
DEFAULT_SETTING_SOURCES = ("user",)
# The names a Parallel Coordinator server is started by, as a command or as one of its arguments.
_OUR_NAMES = {"pcoord", "parallel-coordinator", "parallel_coordinator"}
_CACHED_FILES = 16  # Claude Code configuration files read (a few: the user's, one per project)


MCP_CONFIG_FILE = "mcp-config.json"


def lean_flags(agent: AgentSpec, environ: Mapping[str, str], cwd: Path) -> tuple[list[str], dict[str, bytes]]:
    """The flags of a lean launch: only the agent's MCP servers, its setting sources, a machine-free system prompt;
    and the files they name (the MCP configuration, see Invocation.files).

    `--exclude-dynamic-system-prompt-sections` moves the working directory, memory paths and git
    status from the system prompt into the first message: runs in different directories (worktrees)
    then share one system prompt, and one prompt cache.
    """
    flags, files = ["--strict-mcp-config"], {}
    servers = mcp_servers(agent, environ, cwd)
    if servers:
        # A file, not an argument: a server's configuration may hold a literal token (`claude mcp add -e`).
        files[MCP_CONFIG_FILE] = json.dumps({"mcpServers": servers}, separators=(",", ":")).encode()
        flags += ["--mcp-config", "{file:" + MCP_CONFIG_FILE + "}"]
    flags += ["--setting-sources", ",".join(setting_sources(agent)), "--exclude-dynamic-system-prompt-sections"]
    return flags, files


def setting_sources(agent: AgentSpec) -> tuple[str, ...]:
    """The agent file's `settingSources` (a list or a comma list; empty for none), else the user's settings only."""
    value = agent.extra.get("settingSources")
    if value is None:
        return DEFAULT_SETTING_SOURCES
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise RunnerUnavailableError(
            f"agent {agent.name!r} has settingSources {shortened(repr(value))}: write a list of"
            f" {', '.join(SETTING_SOURCES)} (or [] for none)"
        )
    sources = [item.strip() for item in items if item.strip()]
    for source in sources:
        if source not in SETTING_SOURCES:
            raise RunnerUnavailableError(
                f"agent {agent.name!r} has settingSources entry {shortened(source)}, which Claude Code does not"
                f" know: use {', '.join(SETTING_SOURCES)}"
            )
    return tuple(dict.fromkeys(sources))


def mcp_servers(agent: AgentSpec, environ: Mapping[str, str], cwd: Path) -> dict[str, dict[str, Any]]:
    """The MCP servers the agent file's `mcpServers` names, each as Claude Code's configuration gives it.

    Claude Code takes a list whose entries are a server's name (one configured for the user, the
    project's `.mcp.json` or this project's local scope) or `{name: config}` inline; a mapping of
    names to configs (or to nothing, for a configured one) and a comma list of names are read too.
    """
    value = agent.extra.get("mcpServers")
    if value is None:
        return {}
    entries: list[tuple[str, Any]] = []
    if isinstance(value, str):
        entries = [(name, None) for name in value.replace(",", " ").split()]
    elif isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                entries.append((item, None))
            elif isinstance(item, dict) and item:
                entries += list(item.items())
            else:
                raise _bad_entry(agent, item)
    else:
        raise _bad_entry(agent, value)
    configured: dict[str, tuple[dict[str, Any], str]] | None = None
    servers: dict[str, dict[str, Any]] = {}
    for name, config in entries:
        if not isinstance(name, str) or not name.strip():
            raise _bad_entry(agent, name)
        name = name.strip()
        where = "inline in the agent file"
        if config is None:
            if configured is None:
                configured = configured_servers(environ, cwd)
            if name not in configured:
                raise RunnerUnavailableError(_unknown_server(agent, name, configured, environ, cwd))
            config, where = configured[name]
        if not isinstance(config, dict) or not isinstance(config.get("command") or config.get("url"), str):
            raise RunnerUnavailableError(
                f"agent {agent.name!r} has MCP server {name!r} ({where}) without a `command` or `url`:"
                " write it as Claude Code's .mcp.json does, e.g. {\"command\": \"npx\", \"args\": [...]}"
            )
        if is_parallel_coordinator(config):
            raise RunnerUnavailableError(
                f"agent {agent.name!r} asks for MCP server {name!r} ({where}), which is Parallel Coordinator"
                " itself: a spawned agent never gets it, so that no agent fans out again; remove it from the"
                " agent's mcpServers"
            )
        servers[name] = config
    return servers


def is_parallel_coordinator(config: Mapping[str, Any]) -> bool:
    """A stdio configuration that starts this server: `pcoord serve`, `uvx parallel-coordinator`, `python -m
    parallel_coordinator`. (An HTTP one cannot be told apart; the depth guard stops a server started that way.)"""
    args = config.get("args")
    words = [config.get("command"), *(args if isinstance(args, list) else [])]
    return any(isinstance(word, str) and Path(word).name in _OUR_NAMES for word in words)


def configured_servers(environ: Mapping[str, str], cwd: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """Every MCP server the user's Claude Code configuration gives for `cwd`, with where it came from.

    As in Claude Code, local scope (~/.claude.json, under this project) wins over the project's
    .mcp.json, which wins over user scope (~/.claude.json); the nearest project directory counts.
    """
    found: dict[str, tuple[dict[str, Any], str]] = {}
    path = claude_config_path(environ)
    data = _read_json(path)
    servers = data.get("mcpServers")
    if isinstance(servers, dict):
        found.update((name, (config, f"user scope, {path}")) for name, config in servers.items())
    directories = [cwd, *cwd.parents]
    for directory in reversed(directories):  # farthest first: the nearest is written last and wins
        project = _read_json(directory / ".mcp.json").get("mcpServers")
        if isinstance(project, dict):
            where = f"project scope, {directory / '.mcp.json'}"
            found.update((name, (config, where)) for name, config in project.items())
    projects = data.get("projects")
    for directory in reversed(directories):
        entry = projects.get(str(directory)) if isinstance(projects, dict) else None
        local = entry.get("mcpServers") if isinstance(entry, dict) else None
        if isinstance(local, dict):
            found.update((name, (config, f"local scope of {directory}, {path}")) for name, config in local.items())
    return found


def claude_config_path(environ: Mapping[str, str]) -> Path:
    """Claude Code's own configuration file: ~/.claude.json, or .claude.json in CLAUDE_CONFIG_DIR when set."""
    configured = environ.get("CLAUDE_CONFIG_DIR", "").strip()
    if configured:
        return Path(configured).expanduser() / ".claude.json"
    home = environ.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".claude.json"


def _unknown_server(
    agent: AgentSpec, name: str, configured: Mapping[str, object], environ: Mapping[str, str], cwd: Path
) -> str:
    close = difflib.get_close_matches(name, list(configured), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else (
        f"; configured: {', '.join(sorted(configured)[:20])}" if configured else "; none is configured"
    )
    return (
        f"agent {agent.name!r} names MCP server {shortened(name)} in mcpServers, which is not in the Claude Code"
        f" configuration ({claude_config_path(environ)}, .mcp.json in {cwd} or above){hint}; add it with"
        " `claude mcp add`, or define it inline in the agent file as {name: {command: ..., args: [...]}}"
    )


def _bad_entry(agent: AgentSpec, value: object) -> RunnerUnavailableError:
    return RunnerUnavailableError(
        f"agent {agent.name!r} has mcpServers entry {shortened(repr(value))}: write a list of server names"
        " and {name: config} entries, as Claude Code does"
    )


_files: dict[tuple[str, int, int], dict[str, Any]] = {}


def _read_json(path: Path) -> dict[str, Any]:
    """The MCP sections of a Claude Code configuration file, {} when missing or unreadable; read again only
    when the file changes (~/.claude.json can be megabytes of project history: only its MCP parts are kept)."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if len(_files) >= _CACHED_FILES:
            _files.pop(next(iter(_files)))
        _files[key] = _mcp_sections(data)
    return _files[key]


def _mcp_sections(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    kept: dict[str, Any] = {"mcpServers": data.get("mcpServers")}
    projects = data.get("projects")
    if isinstance(projects, dict):
        kept["projects"] = {
            path: {"mcpServers": entry["mcpServers"]}
            for path, entry in projects.items()
            if isinstance(entry, dict) and entry.get("mcpServers")
        }
    return kept


def agent_cwd(working_directory: str | None) -> Path:
    """Where the agent will run: its task's working directory, else the server's."""
    return Path(working_directory or os.getcwd()).resolve()
