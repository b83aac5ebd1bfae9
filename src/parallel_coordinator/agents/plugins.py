"""The agents of enabled Claude Code plugins: which plugins are enabled and installed, and where their agents are.

What Claude Code 2.1.330 writes and reads, measured with the real CLI in a temporary HOME (docs/plugins.md):
`~/.claude/plugins/installed_plugins.json` is `{"version": 2, "plugins": {"NAME@MARKETPLACE": [entry, ...]}}`,
one entry per scope it was installed in (`scope` user, project or local; project and local entries carry
`projectPath`), each with `installPath` = `~/.claude/plugins/cache/MARKETPLACE/NAME/VERSION` (VERSION is
plugin.json's `version`, else the first 12 hex digits of the marketplace's commit). `enabledPlugins`
(`{"NAME@MARKETPLACE": true|false}`) lives in ~/.claude/settings.json, ./.claude/settings.json and
./.claude/settings.local.json; for one id the local file beats the project's, which beats the user's.
An enabled plugin's agents are `installPath/agents/**/*.md`, named `NAME:AGENT` (`NAME:SUB:AGENT` from a
subdirectory), AGENT being the front matter's `name`, else the file's stem. Uninstalling removes the entry
and the enabledPlugins key but leaves the cache; an update adds a version directory beside the old one.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_coordinator.agents.bounded_read import UnreadableFile, read_regular_file
from parallel_coordinator.agents.scan import Stamp, stamp_of
from parallel_coordinator.agents.spec import AgentSpec, Diagnostic, SourceKind
from parallel_coordinator.errors import shortened

MAX_JSON_BYTES = 4 * 1024 * 1024  # one settings or installed-plugins file; Claude Code's are a few KiB
MAX_PLUGINS = 256  # enabled plugins whose agents are read; wshobson's whole marketplace is 92
_SCOPE_ORDER = ("user", "project", "local")  # settings files, lowest precedence first


@dataclass(frozen=True)
class PluginRoot:
    """One enabled plugin's agents directory, its id (NAME@MARKETPLACE) and the name its agents are prefixed with."""

    agents_dir: Path
    plugin_id: str
    name: str


@dataclass
class PluginSources:
    """The enabled plugins found, the stamp of every file read to find them (for freshness), and what was wrong."""

    roots: list[PluginRoot] = field(default_factory=list)
    inputs: dict[str, Stamp] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def by_dir(self) -> dict[Path, PluginRoot]:
        return {root.agents_dir: root for root in self.roots}


def _install_command(plugin_id: str) -> str:
    """The command that installs it, to quote in a diagnostic; a hostile, huge id is not quoted whole."""
    return f"`claude plugin install {plugin_id if len(plugin_id) <= 200 else 'NAME@MARKETPLACE'}`"


class _Unreadable(ValueError):
    """A JSON file that exists but cannot be used; the message says why."""


def _read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist; _Unreadable when it cannot be used."""
    try:
        raw = read_regular_file(path, MAX_JSON_BYTES)
    except FileNotFoundError:
        return None
    except UnreadableFile as exc:
        raise _Unreadable(str(exc)) from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _Unreadable(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


class _Finder:
    """Reads the files of one discovery, noting each one's stamp and every problem as a diagnostic."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.found = PluginSources()

    def problem(self, path: Path, text: str, *, skipped: bool = True) -> None:
        self.found.diagnostics.append(Diagnostic(path=str(path), problem=text, skipped=skipped))

    def load(self, path: Path, fix: str) -> Any:
        self.found.inputs[str(path)] = stamp_of(str(path))  # before reading: a write after it is seen next time
        try:
            return _read_json(path)
        except _Unreadable as exc:
            self.problem(path, f"skipped: {exc}; {fix}")
            return None

    def enabled(self) -> dict[str, tuple[bool, Path]]:
        """Each plugin id named in an enabledPlugins, its merged value and the file that decided it."""
        files = {
            "user": self.home / ".claude" / "settings.json",
            "project": self.cwd / ".claude" / "settings.json",
            "local": self.cwd / ".claude" / "settings.local.json",
        }
        merged: dict[str, tuple[bool, Path]] = {}
        for scope in _SCOPE_ORDER:
            path = files[scope]
            if scope != "user" and path == files["user"]:
                continue  # run from HOME: ./.claude/settings.json is the user's file, read once
            data = self.load(path, "its enabledPlugins are not used until it is fixed")
            if data is None:
                continue
            section = data.get("enabledPlugins") if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(section, dict | None):
                what = "the file" if not isinstance(data, dict) else "'enabledPlugins'"
                self.problem(path, f"skipped: {what} is not a JSON object; its enabledPlugins are not used")
                continue
            for plugin_id, value in (section or {}).items():
                if not isinstance(value, bool):
                    self.problem(
                        path, f"skipped: enabledPlugins[{shortened(plugin_id)}] is {shortened(repr(value))}, not"
                        " true or false; `claude plugin enable` or `disable` writes it",
                    )
                    continue
                merged[plugin_id] = (value, path)
        return merged

    def installed(self) -> tuple[Path, dict[str, list[Any]]]:
        path = self.home / ".claude" / "plugins" / "installed_plugins.json"
        data = self.load(path, "no plugin agents are loaded; `claude plugin install` rewrites it")
        if data is None:
            return path, {}
        plugins = data.get("plugins") if isinstance(data, dict) else None
        if not isinstance(plugins, dict):
            self.problem(path, "skipped: no 'plugins' object in it; no plugin agents are loaded")
            return path, {}
        # Version 2 holds a list of entries per plugin; a single object is read as a list of one.
        return path, {key: value if isinstance(value, list) else [value] for key, value in plugins.items()}

    def install_path(self, plugin_id: str, entries: list[Any], where: Path) -> Path | None:
        """The entry to use: one for this project (local, then project scope), else the user's, else the first."""
        usable = [entry for entry in entries if isinstance(entry, dict)]

        def rank(entry: dict[str, Any]) -> int:
            here = entry.get("projectPath") == str(self.cwd)
            scope = entry.get("scope")
            return 0 if scope == "local" and here else 1 if scope == "project" and here else 2 if scope == "user" else 3

        for entry in sorted(usable, key=rank):
            value = entry.get("installPath")
            if isinstance(value, str) and value.strip():
                return Path(value)
        self.problem(
            where, f"skipped: plugin {shortened(plugin_id)} has no entry with an 'installPath';"
            f" run {_install_command(plugin_id)} again",
        )
        return None

    def find(self) -> PluginSources:
        enabled = self.enabled()
        installed_file, installed = self.installed()
        ids = sorted(plugin_id for plugin_id, (on, _) in enabled.items() if on)
        if len(ids) > MAX_PLUGINS:
            self.problem(
                installed_file, f"skipped: {len(ids)} plugins are enabled; the agents of the first {MAX_PLUGINS}"
                f" (by id) are read, not those from {shortened(ids[MAX_PLUGINS])} on",
            )
            ids = ids[:MAX_PLUGINS]
        for plugin_id in ids:
            settings_file = enabled[plugin_id][1]
            name, at, marketplace = plugin_id.rpartition("@")
            if not (at and name and marketplace):
                self.problem(
                    settings_file, f"skipped: enabled plugin {shortened(plugin_id)} is not NAME@MARKETPLACE",
                )
                continue
            if plugin_id not in installed:
                self.problem(
                    settings_file, f"skipped: plugin {shortened(plugin_id)} is enabled here but not installed (not in"
                    f" {installed_file}); run {_install_command(plugin_id)}",
                )
                continue
            path = self.install_path(plugin_id, installed[plugin_id], installed_file)
            if path is None:
                continue
            if not path.is_dir():
                self.problem(
                    installed_file, f"skipped: plugin {shortened(plugin_id)} is installed at {path}, which is not a"
                    f" directory; run {_install_command(plugin_id)} again",
                )
                continue
            self.found.roots.append(PluginRoot(path / "agents", plugin_id, name))
        return self.found


def find_plugins(home: Path, cwd: Path) -> PluginSources:
    """The enabled plugins of this HOME, seen from `cwd` (its ./.claude settings), and their agents directories."""
    return _Finder(home, cwd).find()


def default_plugins(cwd: Path | None = None) -> PluginSources:
    """find_plugins() for this HOME and working directory; nothing when there is no HOME."""
    with contextlib.suppress(RuntimeError):  # no HOME and no passwd entry: no user settings, no plugins
        return find_plugins(Path.home(), cwd if cwd is not None else Path.cwd())
    return PluginSources()


def with_plugin_dirs(
    dirs: list[tuple[Path, SourceKind]], plugins: PluginSources
) -> list[tuple[Path, SourceKind]]:
    """The search order with the plugins' directories in it: above the bundled agents, below the user's own
    (user, project, PCOORD_AGENT_DIRS), so an own agent of the same name always wins."""
    if not plugins.roots:
        return dirs
    bundled = [entry for entry in dirs if entry[1] == "bundled"]
    own = [entry for entry in dirs if entry[1] != "bundled"]
    return [*bundled, *((root.agents_dir, "plugin") for root in plugins.roots), *own]


def plugin_named(spec: AgentSpec | None, root: Path, plugins: dict[Path, PluginRoot]) -> AgentSpec | None:
    """A plugin's agent as Claude Code names it, `PLUGIN:AGENT`, with a segment per subdirectory below agents/;
    any other agent unchanged."""
    plugin = plugins.get(root)
    if spec is None or plugin is None or spec.path is None:
        return spec
    try:
        subdirectories = spec.path.parent.relative_to(plugin.agents_dir).parts
    except ValueError:  # not below its root (cannot happen from a walk): named as if at the top
        subdirectories = ()
    name = ":".join([plugin.name, *subdirectories, spec.name])
    return spec.model_copy(update={"name": name, "plugin": plugin.plugin_id})
