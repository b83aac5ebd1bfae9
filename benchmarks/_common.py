"""Shared by the issue 7 benchmarks: temp agent dirs, a stdio server to talk to, tables and leftovers.

Each scenario prints one header line (scenario, parameters, cores) and one table of medians, so
runs on different machines read alike.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
from mcp.client.stdio import StdioServerParameters

PCOORD = str(Path(sys.executable).parent / "pcoord")


def temp_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"pcoord-bench-{prefix}-"))


def write_agents(directory: Path, agents: Mapping[str, Sequence[str]]) -> Path:
    """Command agents, one file each: name -> argv. The argv is run as is, never through a shell."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, argv in agents.items():
        (directory / f"{name}.md").write_text(
            f"---\nname: {name}\ndescription: benchmark agent {name}\nrunner: command\n"
            f"command: {json.dumps(list(argv))}\n---\nBenchmark agent.\n"
        )
    return directory


def server_params(
    root: Path, agents: Path, *, command: Sequence[str] = (PCOORD, "serve"), env: dict[str, str] | None = None
) -> StdioServerParameters:
    """`pcoord serve` over stdio with its own state, agents and an empty HOME (no ~/.claude/agents of the user)."""
    (root / "home").mkdir(parents=True, exist_ok=True)
    return StdioServerParameters(
        command=command[0], args=list(command[1:]), cwd=str(root),
        env={
            "PCOORD_STATE_DIR": str(root / "state"), "PCOORD_AGENT_DIRS": str(agents), "HOME": str(root / "home"),
            "PCOORD_MAX_CPU_USAGE": "100", "PCOORD_PERFORMANCE_LOGGING": "0", **(env or {}),
        },
    )


def server_process(marker: str = "pcoord serve") -> psutil.Process:
    """The server this process started over stdio: our child whose command line names `marker`."""
    for child in psutil.Process().children():
        try:
            if marker in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError(f"no child process with {marker!r} in its command line")


def tree_rss_mb(process: psutil.Process) -> float:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: with 200 samples p99 is the second largest, not an interpolation."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(samples: Iterable[float]) -> float:
    return statistics.median(list(samples))


def header(scenario: str, **parameters: object) -> None:
    given = ", ".join(f"{key}={value}" for key, value in parameters.items())
    print(f"{scenario}: {given}, {psutil.cpu_count()} cores")


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain left-aligned first column and right-aligned numbers; floats to 3 significant places."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(f"{c:<{widths[0]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(columns)))
    for row in cells:
        print("  ".join(f"{v:<{widths[0]}}" if i == 0 else f"{v:>{widths[i]}}" for i, v in enumerate(row)))


def _is_resource_tracker(process: psutil.Process) -> bool:
    """loky's and multiprocessing's trackers: they exit when this process does (their pipe closes)."""
    try:
        return "resource_tracker" in " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return False


_watched: list[psutil.Process] = []


def watch_tree(process: psutil.Process) -> None:
    """Remember a server's whole tree now (call it just before the server ends): once the server is gone its
    pool workers are no longer our descendants, yet they must be gone too."""
    _watched.extend([process, *process.children(recursive=True)])


def reap_leftovers(timeout: float = 10.0) -> int:
    """Wait for our descendants and watched trees to exit, kill (by pid) any still alive; returns how many were."""
    descendants = [p for p in psutil.Process().children(recursive=True) if not _is_resource_tracker(p)]
    known = {p.pid for p in descendants}
    descendants += [p for p in _watched if p.pid not in known and not _is_resource_tracker(p)]
    _, alive = psutil.wait_procs(descendants, timeout=timeout)
    for process in alive:
        try:
            print(f"left behind: {process.pid} {' '.join(process.cmdline())[:120]}", file=sys.stderr)
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)
    return len(alive)


def report_leftovers(timeout: float = 10.0) -> None:
    left = reap_leftovers(timeout)
    print(f"processes left behind: {left}" + (" (killed)" if left else ""))


def structured(result: Any) -> dict[str, Any]:
    """A tool result's structured content; an error result fails the run with its text."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    content: dict[str, Any] = result.structured_content
    return content
