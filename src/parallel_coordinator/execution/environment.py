"""What environment an agent starts with: the server's, less its credentials and obvious secrets.

The policy, in order:
1. The server's own credentials (`SERVER_CREDENTIALS`) never reach an agent or a pool worker,
   whatever any setting says: they would let one HTTP client act as another.
2. Variables whose names look like secrets (`DEFAULT_DENY`, plus the configuration's `deny`) are
   removed, unless the configuration's `allow` list, the agent file's `pass_env`, or the runner (a
   `claude` agent needs what Claude Code logs in with) lets them through.
3. Everything else is inherited (PATH, HOME, locale, proxies, SSH_AUTH_SOCK for git).
4. We add PCOORD_SESSION_ID, PCOORD_TASK_ID (the runner's) and PCOORD_DEPTH (ours + 1).
Patterns are shell-style (`fnmatch`), matched without regard to case.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from parallel_coordinator.errors import PlanError

# Read by the server as credentials; never handed on, not even when an `allow` list names them.
SERVER_CREDENTIALS = frozenset({"PCOORD_TOKEN", "PCOORD_TOKENS"})

# Names that say "secret" in every convention we know of; a runner that needs one says so.
DEFAULT_DENY: tuple[str, ...] = (
    "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*API_KEY*", "*APIKEY*", "*ACCESS_KEY*",
    "*PRIVATE_KEY*", "*CREDENTIAL*", "*_PAT", "*SESSION_KEY*", "*AUTH_KEY*",
)

DEPTH_ENV = "PCOORD_DEPTH"


def current_depth(environ: Mapping[str, str] | None = None) -> int:
    """How deep this coordinator runs: 0 at the top, 1 inside an agent of another coordinator, ..."""
    raw = (os.environ if environ is None else environ).get(DEPTH_ENV, "0")
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


def refuse_past_max_depth(max_depth: int, environ: Mapping[str, str] | None = None) -> None:
    """Raise PlanError when this coordinator runs deeper than `max_depth`: an agent fanning out again, by accident."""
    depth = current_depth(environ)
    if depth > max_depth:
        raise PlanError(
            f"this server runs at depth {depth} ({DEPTH_ENV}={depth}: inside an agent of a coordinator"
            f"{' of an agent' * (depth - 1)}), past the maximum depth {max_depth}: it starts no session."
            " Raise parallel_config.max_depth (or PCOORD_MAX_DEPTH) where nesting is meant"
        )


def scrub_server_credentials() -> None:
    """Drop the server's credentials from its own environment once read: no child can inherit them then
    (pool workers, the fork server, a Dask LocalCluster, git)."""
    for name in SERVER_CREDENTIALS:
        os.environ.pop(name, None)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in patterns)


@dataclass(frozen=True)
class EnvironmentPolicy:
    """The configured policy; `pass_through` names or patterns beat `deny`, never SERVER_CREDENTIALS."""

    deny: tuple[str, ...] = DEFAULT_DENY
    pass_through: tuple[str, ...] = ()

    def removes(self, name: str, allowed: Iterable[str] = ()) -> str | None:
        """Why `name` is kept from agents ("server credential", "denied by ..."), or None if it is inherited."""
        if name in SERVER_CREDENTIALS:
            return "server credential"
        if not _matches(name, self.deny):
            return None
        if _matches(name, (*self.pass_through, *allowed)):
            return None
        pattern = next(p for p in self.deny if fnmatch.fnmatchcase(name.upper(), p.upper()))
        return f"looks like a secret ({pattern})"

    def worker_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """What a pool worker runs with: no credentials, no secrets (an agent's own are in its job)."""
        source = os.environ if environ is None else environ
        return {k: v for k, v in source.items() if self.removes(k) is None}

    def agent_environment(
        self,
        allowed: Iterable[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
        depth: int | None = None,
    ) -> dict[str, str]:
        """The environment one agent starts with; `allowed` is what its runner and agent file let through."""
        source = os.environ if environ is None else environ
        allowed = tuple(allowed)
        env = {k: v for k, v in source.items() if self.removes(k, allowed) is None}
        env[DEPTH_ENV] = str((current_depth(source) if depth is None else depth) + 1)
        return env

    def describe(self, environ: Mapping[str, str] | None = None) -> dict[str, object]:
        """For `pcoord config`: the rules, and which of the current variables agents do not get (names only)."""
        source = os.environ if environ is None else environ
        removed = {name: why for name in sorted(source) if (why := self.removes(name)) is not None}
        return {
            "inherited": "the server's environment, less what is removed below",
            "server_credentials": sorted(SERVER_CREDENTIALS),
            "deny": list(self.deny),
            "allow": list(self.pass_through),
            "removed_now": removed,
            "added": ["PCOORD_SESSION_ID", "PCOORD_TASK_ID", f"{DEPTH_ENV} (this server's depth + 1)"],
        }
