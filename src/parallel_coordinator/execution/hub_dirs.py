"""The hub's private directory in the temp dir: made with a record of the server that owns it, and those
of dead servers (a `kill -9` never runs the hub's close) removed when the next hub starts.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
import tempfile
from pathlib import Path

from parallel_coordinator.state.store import is_alive, process_identity

PREFIX = "pcoord-"
SOCKET = "hub.sock"
OWNER = "owner.json"
# Directories looked at per start: a temp dir full of them must not hold up a server's start.
SWEEP_LIMIT = 1_000


def make_hub_dir() -> Path:
    """A new owner-only directory for the hub's socket, after sweeping away those of dead servers."""
    sweep_stale_hub_dirs()
    path = Path(tempfile.mkdtemp(prefix=PREFIX))  # socket paths must stay short
    pid, started_at = process_identity()
    partial = path / f"{OWNER}.partial"
    partial.write_text(json.dumps({"pid": pid, "started_at": started_at}))
    partial.replace(path / OWNER)  # whole or absent: a sweeper never reads half a record
    return path


def sweep_stale_hub_dirs(root: Path | None = None) -> list[Path]:
    """Remove the hub directories under `root` (the temp dir) whose owning server is dead; returns them.

    Only a directory of ours is touched: named `pcoord-*`, not a symlink, owned by this user, holding our
    owner record and nothing but that record and the hub's socket. A live server's directory, or one
    whose record cannot be read (an older version's, or one being made right now), is left alone.
    """
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        with os.scandir(root) as scan:
            candidates = [Path(e.path) for e in itertools.islice((e for e in scan if e.name.startswith(PREFIX)),
                                                                  SWEEP_LIMIT)]
    except OSError:
        return removed
    for path in candidates:
        if _is_stale(path):
            for name in (SOCKET, OWNER):
                with contextlib.suppress(FileNotFoundError):
                    (path / name).unlink()
            with contextlib.suppress(OSError):  # another server swept it first, or something appeared
                path.rmdir()
                removed.append(path)
    return removed


def _is_stale(path: Path) -> bool:
    uid = os.getuid()
    try:
        directory = os.lstat(path)
        if not stat.S_ISDIR(directory.st_mode) or directory.st_uid != uid:
            return False
        contents = set(os.listdir(path))
        if OWNER not in contents or not contents <= {SOCKET, OWNER}:
            return False
        record = os.lstat(path / OWNER)
        if not stat.S_ISREG(record.st_mode) or record.st_uid != uid or record.st_size > 4096:
            return False
        owner = json.loads((path / OWNER).read_text())
        pid, started_at = int(owner["pid"]), float(owner["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return not is_alive(pid, started_at)
