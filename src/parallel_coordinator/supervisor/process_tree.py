"""Each agent's process tree inside a shard: finding its members cheaply (/proc children files), sampling
their memory, killing every one of them, and reaping those that reparented to the shard.

A shard is the child subreaper of all its agents' trees at once, so "every descendant of ours" no
longer names one agent's tree. An agent's members are its leader's descendants while the leader is
unreaped, the orphans that reparented to the shard from its session (every member keeps the agent's
session unless it calls setsid itself), and every member seen before that still runs, with their
descendants. Where the shard cannot be a subreaper (macOS, PCOORD_PORTABLE=1) orphans reparent
elsewhere: the session's members are then looked up among all processes, once per refresh for the
whole shard.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict

import psutil

from parallel_coordinator.supervisor.lifeline import keeper_pid
from parallel_coordinator.supervisor.platform import MECHANISMS

_TREE_REFRESH_S = 1.0  # finding the tree's members costs /proc reads: refresh membership rarely (NOTES.md)
_KILL_ROUNDS = 10  # rescans in kill(): each one catches descendants forked during the one before


class Family:
    """What the shard's agents share: the shard's own children, and (without a subreaper) who is in which session."""

    def __init__(self) -> None:
        self.leaders: set[int] = set()  # pids of agents not yet reaped: never reaped or claimed as strays
        self.unreaped: list[subprocess.Popen[bytes]] = []  # leaders still alive after their kill's grace
        self._sessions: dict[int, set[int]] = {}
        self._sessions_at = -_TREE_REFRESH_S
        self._orphans: list[int] | None = None  # cached for one turn of the shard loop
        self.orphans_read_at = 0.0

    def new_turn(self) -> None:
        """Forget what was read of the shard's children: the loop calls this once per turn."""
        self._orphans = None

    def children(self) -> list[int]:
        """The shard's direct children: its agents' leaders, orphans that reparented to it, the lifeline keeper."""
        if MECHANISMS.children_files:
            return _read_children("self")
        with contextlib.suppress(psutil.Error):
            return [proc.pid for proc in psutil.Process().children()]
        return []

    def orphans(self, *, fresh: bool = False) -> list[int]:
        """Children of the shard that are not its agents' leaders nor the keeper: reparented members of some tree.

        Read once per turn (the list holds every agent, so reading it per agent would cost n² at a burst's peak).
        """
        if fresh or self._orphans is None:
            self.orphans_read_at = time.monotonic()
            keeper = keeper_pid()
            self._orphans = [pid for pid in self.children() if pid not in self.leaders and pid != keeper]
        return self._orphans

    def session_members(self, sid: int, *, fresh: bool = False) -> set[int]:
        """Every process in session `sid`; one scan of the machine serves every agent for _TREE_REFRESH_S."""
        now = time.monotonic()
        if fresh or now - self._sessions_at > _TREE_REFRESH_S:
            self._sessions, self._sessions_at = _sessions(), now
        return set(self._sessions.get(sid, ()))

    def kill_orphans(self) -> None:
        """With no agent running, any orphan left is a leftover of a finished tree (one that called setsid
        before its parent died, so no tree claimed it): kill it and its descendants."""
        for pid in self.orphans(fresh=True):
            for member in (pid, *_descendants(pid)):
                with contextlib.suppress(OSError):
                    os.kill(member, signal.SIGKILL)

    def reap_orphans(self) -> None:
        """Collect the exit status of every orphan that has ended, so none stays a zombie.

        Never `waitpid(-1)`: that could take a leader's exit status, which its Popen must collect.
        """
        for proc in list(self.unreaped):
            if proc.poll() is not None:
                self.unreaped.remove(proc)
                self.leaders.discard(proc.pid)
        for pid in self.orphans(fresh=True):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


class ProcessTree:
    """One agent and its descendants, with cached psutil handles for cheap RSS sampling."""

    def __init__(self, leader_pid: int, family: Family) -> None:
        self.leader_pid = leader_pid
        self.family = family
        self.leader_reaped = False  # set by the watch: after that the leader's pid may name another process
        self.leader_exited_at: float | None = None  # when the watch saw it exit (its orphans had reparented by then)
        self._members: dict[int, psutil.Process] = {}
        self._refreshed = 0.0
        self.peak_rss_mb = 0.0

    def refresh(self, *, reuse: bool = True, rescan: bool = False) -> None:
        # reuse=False builds fresh handles: a cached one whose pid was recycled would refuse to kill.
        # rescan=True reads the shard's children anew rather than this turn's list.
        try:
            pids = self._find(fresh=rescan)
        except psutil.Error:
            return
        current: dict[int, psutil.Process] = {}
        for pid in pids:
            proc = self._members.get(pid) if reuse else None
            if proc is None:
                try:
                    proc = psutil.Process(pid)
                except psutil.Error:
                    continue
            current[pid] = proc
        # A member seen before stays one while it runs, even after it left for a session of its own.
        for pid, proc in self._members.items():
            if pid not in current and _is_running(proc):
                current[pid] = proc
        self._members = current
        self._refreshed = time.monotonic()

    def _find(self, *, fresh: bool) -> set[int]:
        roots = {pid for pid in self._members if pid != self.leader_pid}
        if not self.leader_reaped:
            roots.add(self.leader_pid)
        sid = self.leader_pid  # the agent leads its own session
        # This turn's list of the shard's children may predate the leader's exit, and so its orphans.
        stale = self.leader_exited_at is not None and self.family.orphans_read_at < self.leader_exited_at
        roots.update(pid for pid in self.family.orphans(fresh=fresh or stale) if _session_of(pid) == sid)
        if not MECHANISMS.prctl:  # so may the session map
            stale_sessions = self.leader_exited_at is not None and self.family._sessions_at < self.leader_exited_at
            roots |= self.family.session_members(sid, fresh=fresh or stale_sessions)
        pids = roots | _descendants(*roots)
        pids.discard(keeper_pid() or 0)
        pids.discard(os.getpid())
        if self.leader_reaped:
            pids.discard(self.leader_pid)
        return pids

    def sample(self) -> tuple[float, float]:
        """One look at every member: the tree's RSS in MB, and the CPU seconds its members have used so far
        (user and system; members that ended count no more)."""
        if time.monotonic() - self._refreshed > _TREE_REFRESH_S:
            self.refresh()
        rss, cpu = 0, 0.0
        for proc in list(self._members.values()):
            try:
                with proc.oneshot():  # one read of the member's stat files for both figures
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
            except psutil.Error:
                continue
            cpu += times.user + times.system
        mb = rss / (1024 * 1024)
        self.peak_rss_mb = max(self.peak_rss_mb, mb)
        return mb, cpu

    def kill(self) -> int:
        """SIGKILL the agent's process group and every member; returns how many were alive.

        Rescans until a scan finds nothing it has not already killed, so a member forked while we
        were killing (and reparented to the shard when its parent died) is caught too. The group is
        signalled only while the leader is unreaped: after that its number may lead someone else's group.
        """
        killed: dict[int, psutil.Process] = {}
        for round_ in range(_KILL_ROUNDS):
            self.refresh(reuse=round_ > 0, rescan=round_ > 0)
            fresh = {pid: p for pid, p in self._members.items() if pid not in killed and _is_running(p)}
            if round_ == 0 and not self.leader_reaped:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.leader_pid, signal.SIGKILL)
            if not fresh:
                break
            for proc in fresh.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            killed.update(fresh)
        self._members.update(killed)
        return len(killed)

    def gone(self) -> bool:
        """Whether every member is dead (zombies count as dead: the shard reaps them)."""
        return not any(_is_running(proc) for pid, proc in self._members.items() if pid != self.leader_pid)


def _children_files(pid: int | str) -> list[str]:
    try:
        return [f"/proc/{pid}/task/{tid}/children" for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _read_children(pid: int | str) -> list[int]:
    found: list[int] = []
    for path in _children_files(pid):
        try:
            with open(path, "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


def _descendants(*roots: int) -> set[int]:
    """The descendants of `roots`: walked through /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) where the
    kernel has them, a few reads per member; else psutil's, from one scan of every process's parent for all
    the roots at once (psutil's `children()` scans them all for each root: 1.3 s for a tree of 200 here)."""
    if not MECHANISMS.children_files and len(roots) == 1:
        try:
            return {proc.pid for proc in psutil.Process(roots[0]).children(recursive=True)}
        except psutil.Error:
            return set()
    if not MECHANISMS.children_files:
        children: dict[int, list[int]] = defaultdict(list)
        for proc in psutil.process_iter(["ppid"]):
            children[proc.info["ppid"]].append(proc.pid)
        read = children.__getitem__
    else:
        read = _read_children
    seen: set[int] = set()
    todo = [child for root in roots for child in read(root)]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(read(pid))
    return seen


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _sessions() -> dict[int, set[int]]:
    """Every process on the machine by session: one getsid per process."""
    found: dict[int, set[int]] = defaultdict(set)
    for pid in psutil.pids():
        sid = _session_of(pid)
        if sid is not None:
            found[sid].add(pid)
    return found


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
