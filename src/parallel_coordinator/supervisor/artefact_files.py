"""An agent's output stream on disk: kept up to a cap, opened only once written to, owner-only.

The supervisor feeds every chunk an agent writes; this counts all of it (bytes, and characters as
UTF-8 with invalid bytes replaced), writes at most `disk_cap` bytes to the artefact file, and keeps
at most `memory_cap` bytes in memory for the result. Standard library only (pool workers import it).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from parallel_coordinator.state.private_files import open_private


class CappedStream:
    def __init__(self, path: Path, *, disk_cap: int, memory_cap: int = 0, count_chars: bool = False) -> None:
        self.path = path
        self.disk_cap = disk_cap
        self.memory_cap = memory_cap
        self.total_bytes = 0  # everything the agent wrote, kept or not
        self.kept_bytes = 0  # what reached the file
        self.captured = bytearray()
        self._fd: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace") if count_chars else None
        self.total_chars = 0

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total_bytes += len(chunk)
        if self._decoder is not None:
            self.total_chars += len(self._decoder.decode(chunk))
        room = self.memory_cap - len(self.captured)
        if room > 0:
            self.captured += chunk[:room]
        room = self.disk_cap - self.kept_bytes
        if room > 0:
            if self._fd is None:
                self._fd = open_private(self.path)
            part = memoryview(chunk)[:room]
            self.kept_bytes += len(part)
            while part:
                part = part[os.write(self._fd, part):]

    def close(self) -> None:
        if self._decoder is not None:
            self.total_chars += len(self._decoder.decode(b"", final=True))
            self._decoder = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def cut_on_disk(self) -> bool:
        return self.total_bytes > self.kept_bytes

    @property
    def cut_in_memory(self) -> bool:
        return self.total_bytes > len(self.captured)

    def text(self) -> str:
        return bytes(self.captured).decode("utf-8", errors="replace")
