"""Server-wide settings: where state lives, where agents come from, how big the pool is."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_state_dir

from parallel_coordinator.agents.spec import SourceKind


def default_state_dir() -> Path:
    configured = os.environ.get("PCOORD_STATE_DIR")
    return Path(configured).expanduser() if configured else Path(user_state_dir("parallel-coordinator"))


@dataclass
class Settings:
    state_dir: Path = field(default_factory=default_state_dir)
    # None means the standard search path (CONTRACT.md: user, project, PCOORD_AGENT_DIRS).
    agent_dirs: list[tuple[Path, SourceKind]] | None = None
    pool_size: int = 64
    pool_idle_timeout_s: float = 300.0
    # Tool results stay small: outputs are cut to these sizes; the full text stays in the store.
    result_chars: int = 4000
    total_result_chars: int = 40_000
    # What the supervisor keeps of an agent's stdout in memory; the artefact file has all of it.
    output_cap_bytes: int = 4 * 1024 * 1024

    @property
    def database(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"
