"""Shared fixtures: a state directory, real command agents written as small scripts, a live coordinator."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.supervisor.platform import PORTABLE_ENV

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class AgentFactory:
    """Writes command agents (a Python script plus its agent file) into one agents directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def script(self, name: str, code: str, **front: Any) -> Path:
        script = self.root / f"{name}.py"
        script.write_text(textwrap.dedent(code))
        lines = [
            "---",
            f"name: {name}",
            f"description: {front.pop('description', f'test agent {name}')}",
            "runner: command",
            f"command: {json.dumps(['{python}', str(script)])}",
        ]
        lines += [f"{key}: {json.dumps(value)}" for key, value in front.items()]
        lines += ["---", f"Test agent {name}.", ""]
        path = self.root / f"{name}.md"
        path.write_text("\n".join(lines))
        return path


ECHO = """
    import json, sys
    request = json.load(sys.stdin)
    print(json.dumps({"progress": 50, "message": "halfway"}), file=sys.stderr, flush=True)
    context = request["context"]
    parts = [f"{request['task_id']} done"] + [f"{k}<{v.strip()}>" for k, v in sorted(context.items())]
    print(" ".join(parts))
"""

FAIL = """
    import sys
    print("something went wrong: disk on fire", file=sys.stderr)
    sys.exit(3)
"""


@pytest.fixture
def agents(tmp_path: Path) -> AgentFactory:
    factory = AgentFactory(tmp_path / "agents")
    factory.script("echo", ECHO)
    factory.script("failer", FAIL)
    return factory


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[str]:
    """One Dask LocalCluster of two worker processes for the whole run; yields its scheduler address.

    Its scheduler fails an attempt whose worker died at once (allowed-failures 0), as the cluster
    the Dask backend starts by itself does, so that the coordinator's own retries take over.
    """
    pytest.importorskip("distributed")
    import dask
    from distributed import LocalCluster

    from parallel_coordinator.execution.dask import DASHBOARD_ADDRESS

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=8, processes=True, dashboard_address=DASHBOARD_ADDRESS, host="127.0.0.1"
        )
    with cluster:
        yield cluster.scheduler_address


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The execution backend of the settings fixture: "local" unless a test is parametrized with `on_both_backends`."""
    return getattr(request, "param", "local")


# The scenario tests that must hold on every backend take this mark.
on_both_backends = pytest.mark.parametrize("backend", ["local", "dask"], indirect=True)


@pytest.fixture
def mechanisms(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The supervisor's mechanisms: "native" (this machine's own) unless a test takes `on_both_paths`.

    "portable" sets PCOORD_PORTABLE=1 before the coordinator starts its pool, whose fork server (and
    so every worker) then takes the POSIX paths. The Dask cluster is shared by the whole run and
    keeps the environment it started with: there `make test-portable` covers the POSIX paths.
    """
    path = str(getattr(request, "param", "native"))
    whole_run_portable = os.environ.get(PORTABLE_ENV, "") not in ("", "0")
    if path == "portable":
        if request.getfixturevalue("backend") == "dask" and not whole_run_portable:
            pytest.skip("the run's Dask cluster keeps its own environment (make test-portable covers it)")
        monkeypatch.setenv(PORTABLE_ENV, "1")
    elif hasattr(request, "param") and whole_run_portable:
        pytest.skip("PCOORD_PORTABLE=1: this run checks the POSIX paths only")
    return path


# The orphan tests that must hold on the Linux mechanisms and on their POSIX fallbacks take this mark.
on_both_paths = pytest.mark.parametrize("mechanisms", ["native", "portable"], indirect=True)


def lifeline_keepers() -> list[psutil.Process]:
    """The shards' lifeline keepers among this process's descendants (one per shard that started an agent)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if any(part.endswith("lifeline_keeper.py") for part in proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def settings(tmp_path: Path, agents: AgentFactory, backend: str, request: pytest.FixtureRequest) -> Settings:
    # CPU admission off: a busy test machine must not slow the suite (tested on its own).
    scheduler = request.getfixturevalue("dask_cluster") if backend == "dask" else None
    return Settings(
        state_dir=tmp_path / "state", agent_dirs=[(agents.root, "env")], pool_idle_timeout_s=60, max_cpu_usage=100,
        backend=backend, dask_scheduler=scheduler,
    )


@pytest.fixture
async def coordinator(settings: Settings, mechanisms: str) -> AsyncIterator[Coordinator]:
    keepers: list[psutil.Process] = []
    async with Coordinator(settings) as running:
        yield running
        if settings.backend == "local":
            keepers = lifeline_keepers()
            # The test did run its pool's shards on the POSIX path, where no agent starts unguarded.
            if mechanisms == "portable":
                assert keepers, "PCOORD_PORTABLE=1, yet no pool worker started a lifeline keeper"
    _, left = psutil.wait_procs(keepers, timeout=20)  # each ends with its shard's worker
    assert left == []


async def wait_until(session: Session, condition: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait for a session change that makes `condition` true; fail after `limit_s` seconds."""
    with anyio.fail_after(limit_s):
        while not condition():
            await session.changed.wait()


def alive(pids: list[int]) -> list[int]:
    """The pids that still name a running (non-zombie) process."""
    result = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                result.append(pid)
        except psutil.NoSuchProcess:
            continue
    return result


PYTHON = sys.executable
