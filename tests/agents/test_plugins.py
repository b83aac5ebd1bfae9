"""Claude Code plugins' agents, on hand-written layouts of the files the real CLI writes (docs/plugins.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import parallel_coordinator.agents.plugins as plugins
from parallel_coordinator.agents import CatalogCache, discover_agents
from parallel_coordinator.errors import UnknownAgentError
from parallel_coordinator.planning.plans import build_plan
from parallel_coordinator.schemas.inputs import Subtask
from tests.agents.test_catalog_cache import backdate
from tests.agents.test_discovery import agent_text, write


class Layout:
    """A HOME and a project directory holding what `claude plugin install / enable / disable` writes."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.project = root / "project"
        self.project.mkdir(parents=True)
        self.installed: dict[str, list[dict[str, Any]]] = {}

    @property
    def installed_file(self) -> Path:
        return self.home / ".claude" / "plugins" / "installed_plugins.json"

    def settings_file(self, scope: str = "user") -> Path:
        if scope == "user":
            return self.home / ".claude" / "settings.json"
        return self.project / ".claude" / ("settings.json" if scope == "project" else "settings.local.json")

    def install(self, plugin_id: str, version: str = "1.0.0", agents: dict[str, str] | None = None,
                scope: str = "user") -> Path:
        name, _, marketplace = plugin_id.partition("@")
        path = self.home / ".claude" / "plugins" / "cache" / marketplace / name / version
        for relative, text in (agents or {}).items():
            write(path / "agents", relative, text)
        path.mkdir(parents=True, exist_ok=True)
        entry: dict[str, Any] = {"scope": scope, "installPath": str(path), "version": version}
        if scope != "user":
            entry["projectPath"] = str(self.project)
        entries = [e for e in self.installed.get(plugin_id, []) if e["scope"] != scope]
        self.installed[plugin_id] = [*entries, entry]
        self.write_installed()
        self.enable(plugin_id, True, scope)
        return path

    def write_installed(self) -> None:
        self.installed_file.parent.mkdir(parents=True, exist_ok=True)
        self.installed_file.write_text(json.dumps({"version": 2, "plugins": self.installed}, indent=2))

    def enable(self, plugin_id: str, on: bool, scope: str = "user") -> None:
        path = self.settings_file(scope)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("enabledPlugins", {})[plugin_id] = on
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    made = Layout(tmp_path)
    monkeypatch.setenv("HOME", str(made.home))
    monkeypatch.setenv("PCOORD_AGENT_DIRS", "")
    monkeypatch.setenv("PCOORD_BUNDLED_AGENTS", "")
    monkeypatch.chdir(made.project)
    return made


def problems(catalog: Any) -> list[tuple[str, str]]:
    return [(d.path, d.problem) for d in catalog.diagnostics]


def test_an_enabled_plugins_agents_are_named_plugin_colon_agent_with_their_plugin_as_source(layout: Layout) -> None:
    path = layout.install("review-kit@tools", agents={
        "reviewer.md": agent_text("reviewer", description="reviews code"),
        "deep/nested.md": agent_text("nested"),
        "unnamed.md": "---\ndescription: no name key\n---\nbody\n",
    })

    catalog = discover_agents()

    assert sorted(catalog.agents) == ["review-kit:deep:nested", "review-kit:reviewer", "review-kit:unnamed"]
    reviewer = catalog.agents["review-kit:reviewer"]
    assert (reviewer.source, reviewer.plugin, reviewer.description) == ("plugin", "review-kit@tools", "reviews code")
    assert reviewer.path == path / "agents" / "reviewer.md"
    assert (path / "agents", "plugin") in catalog.searched
    assert problems(catalog) == []


def test_a_disabled_plugins_agents_are_not_loaded(layout: Layout) -> None:
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    layout.install("other@tools", agents={"helper.md": agent_text("helper")})
    layout.enable("review-kit@tools", False)

    assert sorted(discover_agents().agents) == ["other:helper"]


def test_local_settings_beat_the_projects_which_beat_the_users(layout: Layout) -> None:
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    layout.enable("review-kit@tools", False)
    layout.enable("review-kit@tools", True, "project")
    assert "review-kit:reviewer" in discover_agents()

    layout.enable("review-kit@tools", False, "local")
    assert "review-kit:reviewer" not in discover_agents()


def test_a_project_scope_plugin_is_seen_from_its_project_only(layout: Layout, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")}, scope="project")
    assert "review-kit:reviewer" in discover_agents()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert len(discover_agents()) == 0


def test_only_the_installed_version_is_read_when_older_ones_stay_in_the_cache(layout: Layout) -> None:
    layout.install("review-kit@tools", "1.0.0", agents={"old.md": agent_text("old")})
    layout.install("review-kit@tools", "1.1.0", agents={"new.md": agent_text("new")})

    assert sorted(discover_agents().agents) == ["review-kit:new"]


def test_with_no_settings_and_no_plugins_nothing_is_reported(layout: Layout) -> None:
    write(layout.home / ".claude" / "agents", "mine.md", agent_text("mine"))

    catalog = discover_agents()

    assert sorted(catalog.agents) == ["mine"] and problems(catalog) == []


def test_a_malformed_installed_plugins_file_is_named_and_the_other_agents_stay(layout: Layout) -> None:
    write(layout.home / ".claude" / "agents", "mine.md", agent_text("mine"))
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    layout.installed_file.write_text('{"version": 2, "plugins": {')

    catalog = discover_agents()

    assert sorted(catalog.agents) == ["mine"]
    [(path, problem)] = [p for p in problems(catalog) if "installed_plugins" in p[0]]
    assert path == str(layout.installed_file)
    assert "not valid JSON" in problem and "line 1, column" in problem


def test_a_malformed_settings_file_is_named_and_the_others_still_count(layout: Layout) -> None:
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    layout.enable("review-kit@tools", True, "project")
    layout.settings_file().write_text("{not json")

    catalog = discover_agents()

    assert "review-kit:reviewer" in catalog
    assert [path for path, problem in problems(catalog) if "not valid JSON" in problem] == [str(layout.settings_file())]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("not-installed", "is enabled here but not installed"),
        ("no-install-path", "has no entry with an 'installPath'"),
        ("install-path-gone", "which is not a directory"),
        ("not-a-boolean", "not true or false"),
        ("plugins-not-an-object", "no 'plugins' object"),
    ],
)
def test_a_broken_plugin_entry_is_a_diagnostic_that_says_how_to_fix_it(
    layout: Layout, breakage: str, expected: str
) -> None:
    path = layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    layout.install("other@tools", agents={"helper.md": agent_text("helper")})
    if breakage == "not-installed":
        del layout.installed["review-kit@tools"]
    elif breakage == "no-install-path":
        del layout.installed["review-kit@tools"][0]["installPath"]
    elif breakage == "install-path-gone":
        path.rename(path.with_name("moved"))
    layout.write_installed()
    if breakage == "not-a-boolean":
        enabled = {"review-kit@tools": "yes", "other@tools": True}
        layout.settings_file().write_text(json.dumps({"enabledPlugins": enabled}))
    if breakage == "plugins-not-an-object":
        layout.installed_file.write_text(json.dumps({"version": 2, "plugins": []}))

    catalog = discover_agents()

    assert "review-kit:reviewer" not in catalog
    assert ("other:helper" in catalog) is (breakage != "plugins-not-an-object")
    assert any(expected in problem for _, problem in problems(catalog)), problems(catalog)


def test_own_agents_win_over_a_plugins_agent_of_the_same_name(layout: Layout) -> None:
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer", description="plugin's")})
    write(layout.home / ".claude" / "agents", "mine.md", agent_text("review-kit:reviewer", description="mine"))

    catalog = discover_agents()

    assert catalog.agents["review-kit:reviewer"].description == "mine"
    assert any("user agents override plugin agents" in problem for _, problem in problems(catalog))


def test_past_the_plugin_bound_the_rest_are_named_not_read(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        layout.install(f"{name}@tools", agents={"x.md": agent_text("x")})
    monkeypatch.setattr(plugins, "MAX_PLUGINS", 2)

    catalog = discover_agents()

    assert sorted(catalog.agents) == ["a:x", "b:x"]
    assert any("3 plugins are enabled" in problem and "'c@tools'" in problem for _, problem in problems(catalog))


def test_the_cache_sees_an_install_a_disable_and_an_uninstall_on_the_next_read(layout: Layout) -> None:
    (layout.home / ".claude" / "agents").mkdir(parents=True)
    cache = CatalogCache()

    def settled() -> list[str]:
        # Old stamps are trusted: only a real change of an input can make the cache read again.
        backdate(*[p for p in layout.home.rglob("*")], *layout.project.rglob("*"), layout.project)
        return sorted(cache.read_now().agents)

    assert settled() == []
    layout.install("review-kit@tools", agents={"reviewer.md": agent_text("reviewer")})
    assert settled() == ["review-kit:reviewer"]
    scans = cache.scans
    assert settled() == ["review-kit:reviewer"] and cache.scans == scans  # nothing changed: no new scan

    layout.enable("review-kit@tools", False)
    assert settled() == []
    layout.enable("review-kit@tools", True)
    assert settled() == ["review-kit:reviewer"]
    layout.installed.clear()
    layout.write_installed()
    assert settled() == []


def test_a_plan_may_name_a_plugin_agent_and_its_bare_name_is_suggested(layout: Layout) -> None:
    layout.install("pr-review-toolkit@tools", agents={"code-reviewer.md": agent_text("code-reviewer")})
    catalog = discover_agents()

    named = Subtask(id="t1", description="review", agent_type="pr-review-toolkit:code-reviewer")
    plan = build_plan([named], 1, catalog)
    assert list(plan.agents) == ["pr-review-toolkit:code-reviewer"]

    with pytest.raises(UnknownAgentError, match=r"did you mean 'pr-review-toolkit:code-reviewer'\?"):
        build_plan([Subtask(id="t1", description="review", agent_type="code-reviewer")], 1, catalog)


def test_a_huge_enabled_plugin_id_is_quoted_shortened_in_its_diagnostic(layout: Layout) -> None:
    huge = "x" * 50_000 + "@tools"
    layout.enable(huge, True)  # enabled in the settings, never installed
    catalog = discover_agents()
    (problem,) = [p for _, p in problems(catalog) if "not installed" in p]
    assert "(50,006 characters)" in problem and len(problem) < 1_000
    assert "claude plugin install NAME@MARKETPLACE" in problem
