"""What to tell someone whose catalog is empty: where we looked, how to add an agent, how to try ours.

One text for every surface (`pcoord agents`, its JSON, the list_agents tool), so they never disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

from parallel_coordinator.agents.discovery import AGENT_DIRS_ENV, BUNDLED_AGENTS_ENV
from parallel_coordinator.agents.spec import AgentCatalog, SourceKind

_WHY = {
    "user": "user", "project": "project",
    "env": f"env, from {AGENT_DIRS_ENV}", "bundled": f"bundled, {BUNDLED_AGENTS_ENV}",
}


def _state(path: Path) -> str:
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "not a directory"
    try:
        with os.scandir(path) as entries:
            has_markdown = any(entry.name.endswith(".md") for entry in entries)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    return "no *.md at its top (subdirectories are searched too)" if not has_markdown else "no usable agent file"


def _where(dirs: list[tuple[Path, SourceKind]]) -> list[str]:
    if not dirs:
        return ["  (no directory: HOME is unset and nothing else was given)"]
    return [f"  {index}. {path}  ({_WHY[source]}: {_state(path)})" for index, (path, source) in enumerate(dirs, 1)]


def empty_catalog_help(catalog: AgentCatalog) -> str | None:
    """The help for an empty catalog, as plain lines; None when it holds agents."""
    if catalog.agents:
        return None
    skipped = f" ({len(catalog.diagnostics)} files skipped: see the diagnostics)" if catalog.diagnostics else ""
    return "\n".join([
        f"No agents found{skipped}. Looked in these directories, in order (a later one wins a name clash):",
        *_where(catalog.searched),
        "Add an agent: a Markdown file NAME.md in ~/.claude/agents or ./.claude/agents, YAML front matter",
        "then the system prompt: `---` / `name: NAME` / `description: what it does` / `---` / the prompt.",
        "Or let `pcoord init` write one into ./.claude/agents (a claude agent, which needs a logged-in `claude`);",
        "`pcoord init --runner command` writes one that runs a script beside it, without Claude.",
        f"Try the bundled offline agents (no Claude needed): set {BUNDLED_AGENTS_ENV}=1, e.g.",
        f"`{BUNDLED_AGENTS_ENV}=1 pcoord agents`, or run `pcoord demo`.",
    ])
