"""What one agent is: the parsed form of a Claude Code agent file plus the coordinator's own keys.

And what a catalog of them holds: the agents by name, and a diagnostic for every file not used as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["critical", "high", "medium", "low"]
RunnerKind = Literal["claude", "command", "codex", "gemini"]
SourceKind = Literal["user", "project", "env", "bundled"]


class AgentSpec(BaseModel):
    """One agent, as found in an agent file.

    `body` is the Markdown after the front matter: the system prompt of a `claude` run (and of codex and gemini runs).
    `tools` is None when the file names none (Claude Code then allows every tool).
    `extra` keeps every front-matter key we do not interpret, untouched.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    body: str = ""
    tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    model: str | None = None
    runner: RunnerKind = "claude"
    command: list[str] | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    priority: Priority = "medium"
    fallback_agents: list[str] = Field(default_factory=list)
    timeout: float | None = Field(default=None, gt=0)
    # Seconds of silence with an idle process tree before a run counts as stalled (the option overrides it).
    stall_timeout: float | None = Field(default=None, gt=0)
    isolation: str | None = None
    # Secret-looking environment variables this agent may inherit all the same (environment.py).
    pass_env: list[str] = Field(default_factory=list)
    path: Path | None = None
    source: SourceKind = "user"
    root: Path | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Diagnostic(BaseModel):
    """A file that was skipped or repaired, and why."""

    model_config = ConfigDict(frozen=True)

    path: str
    problem: str
    skipped: bool = True


@dataclass
class AgentCatalog:
    """The agents found, by name, a diagnostic for every file skipped, repaired or shadowed, and the
    directories searched (lowest precedence first), so an empty catalog can say where it looked."""

    agents: dict[str, AgentSpec] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    searched: list[tuple[Path, SourceKind]] = field(default_factory=list)

    def get(self, name: str) -> AgentSpec | None:
        return self.agents.get(name)

    def names(self) -> list[str]:
        return sorted(self.agents)

    def __contains__(self, name: object) -> bool:
        return name in self.agents

    def __len__(self) -> int:
        return len(self.agents)
