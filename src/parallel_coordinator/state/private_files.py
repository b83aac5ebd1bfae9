"""State is private: directories 0700 and files 0600, whatever the umask.

The state directory holds every task, its context and its output; on a shared machine other users
must not read it. Standard library only: pool workers import this to write artefacts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, root: Path | None = None) -> Path:
    """Make `path` and any missing parents (below `root`, if given) owner-only directories."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        if root is not None and current == root:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """A descriptor on `path`, created owner-only (an existing file is made owner-only too)."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, data: bytes) -> None:
    with os.fdopen(open_private(path), "wb") as handle:
        handle.write(data)


def make_private(path: Path) -> None:
    """Tighten an existing file or directory (left by an earlier release) to owner-only."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
