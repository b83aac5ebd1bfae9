"""Reading one file that discovery is given (an agent file, a settings file) without trusting it.

A FIFO or a device named like one must not hang discovery, and a huge file must not be read whole:
the file is opened without blocking, must be a regular file, and is read only up to its bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnreadableFile(ValueError):
    """The file exists but cannot be used; the message says why, in words for a diagnostic."""


def read_regular_file(path: Path, max_bytes: int, of_what: str = "") -> bytes:
    """The file's bytes, at most `max_bytes`; FileNotFoundError when it is missing, UnreadableFile otherwise."""
    limit = f"the {max_bytes // (1024 * 1024)} MiB limit{f' for {of_what}' if of_what else ''}"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(f"cannot open the file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"the file is {info.st_size} bytes, over {limit}")
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:  # it grew since fstat
        raise UnreadableFile(f"the file is over {limit}")
    return raw
