"""What the runners of other vendors' agent CLIs (codex, gemini) share: finding the executable, the access
an agent file's `tools` ask for, the system prompt, and how a failure's text is classified.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.claude import protocol_text

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

Access = Literal["read", "edit", "all"]
Failure = Literal["login", "untrusted", "rate_limit"]

# Claude Code's names for the tools that change files, and the one that runs anything.
_EDITING_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
_COMMAND_TOOLS = frozenset({"Bash"})


def find_executable(name: str, env_var: str, install_hint: str, environ: Mapping[str, str] | None = None) -> str:
    """The CLI's executable: `env_var` if set (a path or a name on PATH), else `name` on PATH."""
    env = os.environ if environ is None else environ
    configured = env.get(env_var, "").strip()
    if configured:
        found = shutil.which(configured, path=env.get("PATH"))
        if found is None:
            raise RunnerUnavailableError(
                f"{env_var}={configured!r} is not an executable file; point it at the `{name}` executable "
                f"(e.g. the output of `command -v {name}`) or unset it"
            )
        return found
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        raise RunnerUnavailableError(f"the `{name}` executable was not found on PATH; {install_hint}")
    return found


def access_of(agent: AgentSpec) -> Access:
    """What the agent file's `tools` (Claude Code's names) let it do: read only, edit files, or run commands.

    No `tools` means every tool, as Claude Code reads it; "Bash(git *)" counts as Bash.
    """
    if agent.tools is None:
        return "all"
    names = {entry.split("(", 1)[0].strip() for entry in agent.tools}
    if names & _COMMAND_TOOLS:
        return "all"
    if names & _EDITING_TOOLS:
        return "edit"
    return "read"


def chosen(agent: AgentSpec, key: str, choices: tuple[str, ...]) -> str | None:
    """The agent file's `key` (a CLI's own mode name), checked against the CLI's choices; None if unset."""
    value = agent.extra.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value.strip() not in choices:
        raise RunnerUnavailableError(
            f"agent {agent.name!r}: {key} {value!r} is not one of {', '.join(choices)}; "
            f"fix it in {agent.path or 'its file'}"
        )
    return value.strip()


def flag_on(agent: AgentSpec, key: str) -> bool:
    """An agent file's yes/no key that defaults to yes; anything but true or false is refused, naming it
    (a quoted "false" must not leave it on silently)."""
    value = agent.extra.get(key, True)
    if not isinstance(value, bool):
        raise RunnerUnavailableError(
            f"agent {agent.name!r}: {key} {value!r} is not true or false (unquoted);"
            f" fix it in {agent.path or 'its file'}"
        )
    return value


def model_of(agent: AgentSpec) -> str | None:
    """The model to ask the CLI for, or None for its own default (`inherit` means the CLI's default here)."""
    model = (agent.model or "").strip()
    return model if model and model.lower() != "inherit" else None


def system_prompt(agent: AgentSpec) -> str:
    """The agent's body and its directory's PROTOCOL.md, as the claude runner gives them."""
    return "\n\n".join(part for part in (agent.body.strip(), protocol_text(agent)) if part)


@dataclass(frozen=True)
class FailureTexts:
    """A CLI's own words for each kind of failure: regular expressions, matched ignoring case, `^` at any line."""

    login: tuple[str, ...]
    untrusted: tuple[str, ...]
    rate_limit: tuple[str, ...]

    def classify(self, text: str) -> Failure | None:
        """The kind of failure `text` reports: a missing login first, then an untrusted directory, then a limit."""
        kinds: tuple[tuple[Failure, tuple[str, ...]], ...] = (
            ("login", self.login), ("untrusted", self.untrusted), ("rate_limit", self.rate_limit),
        )
        for kind, patterns in kinds:
            if any(re.search(pattern, text, re.IGNORECASE | re.MULTILINE) for pattern in patterns):
                return kind
        return None
