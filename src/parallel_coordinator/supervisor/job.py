"""What one attempt sends to the supervisor: a picklable job, built by the coordinator."""

from __future__ import annotations

from dataclasses import dataclass

from parallel_coordinator.runners.base import Invocation


@dataclass(frozen=True)
class SupervisorJob:
    """Everything one attempt needs, picklable, sent to a pool worker."""

    attempt_id: str
    invocation: Invocation
    artefact_dir: str
    cwd: str | None = None
    # The agent's whole environment, built by the coordinator (environment.py); None: this worker's own.
    env: dict[str, str] | None = None
    timeout_s: float | None = None
    # Silence (no output) with the whole tree idle on CPU this long ends the run as "stalled".
    stall_timeout_s: float | None = None
    memory_limit_mb: float | None = None
    output_cap_bytes: int = 4 * 1024 * 1024
    # What each of stdout and stderr may take on disk; past it the rest is counted, not kept.
    disk_cap_bytes: int = 64 * 1024 * 1024
    token_budget: int | None = None
