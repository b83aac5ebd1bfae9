"""Walk the agent directories within fixed bounds and merge the files found into a catalog.

Symlinked directories are followed wherever they lead (linking a collection in is how many people
install agents), but they count against the same bounds as everything else: per root, at most
MAX_ENTRIES directory entries are listed and MAX_DEPTH levels entered. A search that hits a bound
says so in a Diagnostic naming the root and where it stopped, which `pcoord agents` shows; a symlink
to /usr therefore costs one bounded walk, never seconds on every call. A directory reached twice (a
symlink loop) is entered once. How one file is parsed is the caller's: discovery parses every file,
the catalogue cache reuses what it parsed before.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parallel_coordinator.agents.spec import AgentCatalog, AgentSpec, Diagnostic, SourceKind

MAX_ENTRIES = 20_000  # directory entries listed per root and scan: the bound on one walk's cost
MAX_DEPTH = 10  # directory levels below a root; collections nest two or three deep

# What a file or directory looked like: (st_dev, st_ino, st_mtime_ns, st_size); None when stat failed.
Stamp = tuple[int, int, int, int] | None
ParseFn = Callable[[Path, SourceKind, Path, Stamp], tuple[AgentSpec | None, list[Diagnostic]]]

# A missing root (or one under a file, or a symlink loop) is simply not used, as before any walk.
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def stamp_of(path: str) -> Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


@dataclass
class Scan:
    """One scan's catalog, and the stamp of every directory listed and agent file found in it."""

    catalog: AgentCatalog
    directories: dict[str, Stamp] = field(default_factory=dict)
    files: dict[str, Stamp] = field(default_factory=dict)


@dataclass
class _Walk:
    root: Path
    scan: Scan
    max_entries: int
    max_depth: int
    found: list[tuple[str, Stamp]] = field(default_factory=list)
    listed: int = 0
    too_deep: list[str] = field(default_factory=list)

    def diagnose(self, path: str, problem: str) -> None:
        self.scan.catalog.diagnostics.append(Diagnostic(path=path, problem=problem))


def _is_protocol_file(path: str) -> bool:
    # system/PROTOCOL.md is shared instructions for a collection's agents, not an agent itself.
    return os.path.basename(path) == "PROTOCOL.md" and os.path.basename(os.path.dirname(path)) == "system"


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink
    except OSError:
        return False


def _walk(walk: _Walk) -> None:
    """Every *.md under the root, depth first in name order (files before subdirectories), within bounds."""
    top = str(walk.root)
    try:
        info = os.stat(top)
    except OSError as exc:
        walk.scan.directories[top] = None  # when it appears, the next freshness check sees it
        if exc.errno not in _ABSENT_ERRNOS:
            walk.diagnose(top, f"skipped: cannot read the directory: {exc.strerror or exc}")
        return
    walk.scan.directories[top] = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
    if not stat.S_ISDIR(info.st_mode):
        walk.diagnose(top, "skipped: not a directory")
        return
    seen: set[tuple[int, int]] = set()
    stack = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            info = os.stat(directory)
        except OSError:
            continue
        identity = (info.st_dev, info.st_ino)
        if identity in seen:
            continue  # a symlink loop, or a directory already reached another way
        seen.add(identity)
        walk.scan.directories[directory] = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        budget = walk.max_entries - walk.listed
        try:
            with os.scandir(directory) as entries:
                # Never more than the budget in memory, however large one directory is.
                listing = list(itertools.islice(entries, budget + 1))
        except OSError as exc:
            walk.diagnose(str(exc.filename or directory), f"skipped: cannot read the directory: {exc.strerror or exc}")
            continue
        capped = len(listing) > budget
        listing = sorted(listing[:budget], key=lambda entry: entry.name)
        walk.listed += len(listing)
        subdirectories = []
        for entry in listing:
            if entry.name.startswith("."):
                continue  # hidden: .git, .github hold templates and history, not agents
            if _is_dir(entry):
                subdirectories.append(entry.path)
            elif entry.name.endswith(".md") and not _is_protocol_file(entry.path):
                walk.found.append((entry.path, stamp_of(entry.path)))
        if capped:
            walk.diagnose(
                top,
                f"skipped: the search stopped after {walk.max_entries} files and directories, in {directory}; "
                "agents beyond were not read (a symlink into a large tree does this: link the agents' own "
                "folder instead)",
            )
            return
        if depth + 1 > walk.max_depth:
            walk.too_deep.extend(subdirectories)
            continue
        stack.extend((path, depth + 1) for path in reversed(subdirectories))


def _walk_root(root: Path, scan: Scan, *, max_entries: int, max_depth: int) -> list[tuple[str, Stamp]]:
    walk = _Walk(root, scan, max_entries, max_depth)
    _walk(walk)
    if walk.too_deep:
        walk.diagnose(
            str(root),
            f"skipped: {len(walk.too_deep)} {'directory' if len(walk.too_deep) == 1 else 'directories'} more than "
            f"{max_depth} levels deep {'was' if len(walk.too_deep) == 1 else 'were'} not searched (the first: "
            f"{walk.too_deep[0]}); agents kept that deep are not found",
        )
    return walk.found


def scan_agent_dirs(
    dirs: Sequence[tuple[Path, SourceKind]],
    parse: ParseFn,
    *,
    max_entries: int = MAX_ENTRIES,
    max_depth: int = MAX_DEPTH,
) -> Scan:
    """Walk each (root, source), lowest precedence first, parse what is found; later sources win a name clash."""
    scan = Scan(AgentCatalog(searched=list(dirs)))
    candidates: list[tuple[str, Stamp, SourceKind, Path]] = []
    for root, source in dirs:
        for path, stamp in _walk_root(root, scan, max_entries=max_entries, max_depth=max_depth):
            scan.files[path] = stamp
            candidates.append((path, stamp, source, root))

    # A file reachable twice (overlapping directories, a symlink) is read once, at its highest precedence.
    def identity(path: str, stamp: Stamp) -> object:
        return stamp[:2] if stamp is not None else os.path.realpath(path)

    last_seen = {identity(path, stamp): index for index, (path, stamp, _, _) in enumerate(candidates)}
    catalog = scan.catalog
    for index, (path, stamp, source, root) in enumerate(candidates):
        if last_seen[identity(path, stamp)] != index:
            continue
        spec, diagnostics = parse(Path(path), source, root, stamp)
        catalog.diagnostics.extend(diagnostics)
        if spec is None:
            continue
        previous = catalog.agents.get(spec.name)
        if previous is not None:
            reason = (
                f"a later file in the same {source} directory wins"
                if previous.source == source
                else f"{source} agents override {previous.source} agents"
            )
            catalog.diagnostics.append(
                Diagnostic(
                    path=str(previous.path),
                    problem=f"shadowed: agent {spec.name!r} is also defined in {spec.path}, "
                    f"which is used instead ({reason})",
                    skipped=False,
                )
            )
        catalog.agents[spec.name] = spec
    return scan
