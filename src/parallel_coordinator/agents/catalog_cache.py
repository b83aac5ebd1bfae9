"""The agent catalogue kept between calls: re-read only when a stamp (mtime, size, inode) of a file or
directory it came from changed, so edits apply without a restart; `read()` does the work off the event loop.

Checking is one stat per directory listed and per agent file: cheap beside a parse. When anything
changed, the directories are walked again and only new or changed files are parsed. A stamp whose
mtime is within RACY_NS of the scan is not trusted (an edit within the same clock tick would keep
the mtime), so a file that was just written is read once more on the next call, as git does for a
racy index.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from parallel_coordinator.agents.discovery import default_agent_dirs, parse_agent_file
from parallel_coordinator.agents.scan import MAX_DEPTH, MAX_ENTRIES, Scan, Stamp, scan_agent_dirs, stamp_of
from parallel_coordinator.agents.spec import AgentCatalog, AgentSpec, Diagnostic, SourceKind

# Coarser than any file system's mtime tick we expect (FAT's is 2 s; ext4's a few ms).
RACY_NS = 2_000_000_000

_Dirs = tuple[tuple[Path, SourceKind], ...]


@dataclass(frozen=True)
class _Parsed:
    stamp: Stamp
    trusted: bool
    spec: AgentSpec | None
    diagnostics: list[Diagnostic]


@dataclass(frozen=True)
class _Cached:
    dirs: _Dirs
    started_ns: int
    scan: Scan


def _trusted(stamp: Stamp, started_ns: int) -> bool:
    # An mtime far from the scan's time (past or future) cannot be the mtime a later edit leaves.
    return stamp is None or abs(stamp[2] - started_ns) >= RACY_NS


class CatalogCache:
    """The catalogue of `dirs` (default_agent_dirs(), looked up at each read, when None), kept fresh.

    `parses` counts agent files parsed and `scans` the walks of the directories, for tests and benchmarks.
    """

    def __init__(
        self,
        dirs: Sequence[tuple[Path, SourceKind]] | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self._dirs = None if dirs is None else tuple(dirs)
        self._max_entries = max_entries
        self._max_depth = max_depth
        self._lock = threading.Lock()  # a read on a thread and one on the caller's never interleave
        self._turn = anyio.Lock()  # async readers queue here: one scans, the others then find it fresh
        self._cached: _Cached | None = None
        # Bounded: pruned to the files of the latest scan, which the walk bounds.
        self._parsed: dict[tuple[Path, SourceKind, Path], _Parsed] = {}
        self.parses = 0
        self.scans = 0

    async def read(self) -> AgentCatalog:
        """The catalogue now, checked and (re)built on a worker thread so the event loop keeps serving."""
        async with self._turn:
            return await anyio.to_thread.run_sync(self.read_now)

    def read_now(self) -> AgentCatalog:
        """The same, on the calling thread: for scripts and tests, not for the event loop."""
        with self._lock:
            dirs = tuple(default_agent_dirs()) if self._dirs is None else self._dirs
            cached = self._cached
            if cached is None or cached.dirs != dirs or self._changed(cached):
                cached = self._cached = self._rescan(dirs)
            catalog = cached.scan.catalog
            # Callers may change their copy (the coordinator applies agent_pool overrides).
            return AgentCatalog(
                agents=dict(catalog.agents), diagnostics=list(catalog.diagnostics), searched=list(catalog.searched)
            )

    def _changed(self, cached: _Cached) -> bool:
        stamps = itertools.chain(cached.scan.directories.items(), cached.scan.files.items())
        return any(
            not _trusted(stamp, cached.started_ns) or stamp_of(path) != stamp for path, stamp in stamps
        )

    def _rescan(self, dirs: _Dirs) -> _Cached:
        started_ns = time.time_ns()
        seen: set[tuple[Path, SourceKind, Path]] = set()

        def parse(
            path: Path, source: SourceKind, root: Path, stamp: Stamp
        ) -> tuple[AgentSpec | None, list[Diagnostic]]:
            key = (path, source, root)
            seen.add(key)
            before = self._parsed.get(key)
            if before is not None and before.trusted and before.stamp == stamp:
                return before.spec, before.diagnostics
            self.parses += 1
            spec, diagnostics = parse_agent_file(path, source=source, root=root)
            self._parsed[key] = _Parsed(stamp, _trusted(stamp, started_ns), spec, diagnostics)
            return spec, diagnostics

        scan = scan_agent_dirs(dirs, parse, max_entries=self._max_entries, max_depth=self._max_depth)
        self.scans += 1
        self._parsed = {key: parsed for key, parsed in self._parsed.items() if key in seen}
        return _Cached(dirs, started_ns, scan)
