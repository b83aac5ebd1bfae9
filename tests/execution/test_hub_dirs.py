"""Hub directories left by dead servers are swept at the next hub's start; nothing else is touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from parallel_coordinator.execution.channel import AttemptHub
from parallel_coordinator.execution.hub_dirs import OWNER, SOCKET

# A server's hub as a real process: it serves its socket and says where, then waits for stdin to close.
HUB = """
import sys
import anyio
from parallel_coordinator.execution.channel import AttemptHub

async def main() -> None:
    hub = AttemptHub()
    async with anyio.create_task_group() as group:
        await group.start(hub.serve)
        print(hub.address, flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)
        group.cancel_scope.cancel()
    hub.close()

anyio.run(main)
"""


@contextmanager
def hub_process(temp: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A process serving a hub whose directory is made under `temp`; yields it and that directory."""
    with subprocess.Popen(
        [sys.executable, "-c", HUB], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        address = Path(process.stdout.readline().strip())
        assert address.name == SOCKET and address.exists()
        try:
            yield process, address.parent
        finally:
            if process.poll() is None:
                process.stdin.close()
                process.wait(timeout=30)


def killed_hub_dir(temp: Path) -> Path:
    """The directory of a hub whose server died by SIGKILL: its close never ran."""
    with hub_process(temp) as (process, directory):
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert (directory / SOCKET).exists() and (directory / OWNER).exists()
    return directory


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temp dir, so that no sweep here can touch anything in the machine's."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_starting_hub_removes_the_directory_of_a_killed_server_and_keeps_a_live_ones(temp: Path) -> None:
    dead = killed_hub_dir(temp)
    with hub_process(temp) as (_, live):
        hub = AttemptHub()
        try:
            assert not dead.exists()
            assert (live / SOCKET).exists() and (live / OWNER).exists()
            assert Path(hub.address).parent.exists()
        finally:
            hub.close()


def test_the_sweep_leaves_alone_what_is_not_certainly_a_dead_servers_hub_directory(temp: Path) -> None:
    record = (killed_hub_dir(temp) / OWNER).read_text()  # names a dead process

    def directory(name: str, **files: str) -> Path:
        path = temp / name
        path.mkdir()
        for file, text in files.items():
            (path / file).write_text(text)
        return path

    directory("pcoord-from-an-older-version", **{SOCKET: ""})
    crowded = directory("pcoord-with-something-else", **{OWNER: record, "notes.txt": "not ours to delete"})
    directory("pcoord-garbled-record", **{OWNER: "{not json"})
    elsewhere = directory("elsewhere", **{OWNER: record})
    (temp / "pcoord-link").symlink_to(elsewhere)
    (temp / "pcoord-a-file").write_text(record)
    kept = ["pcoord-from-an-older-version", "pcoord-with-something-else", "pcoord-garbled-record", "elsewhere",
            "pcoord-link", "pcoord-a-file"]
    if os.geteuid() == 0:  # only root can give a directory to another user
        foreign = directory("pcoord-another-users", **{OWNER: record})
        os.chown(foreign, 65534, 65534)
        kept.append(foreign.name)
    directory("pcoord-dead-and-ours", **{OWNER: record})

    hub = AttemptHub()
    hub.close()

    assert sorted(p.name for p in temp.iterdir()) == sorted(kept)
    assert (elsewhere / OWNER).exists() and (crowded / "notes.txt").exists()
