"""The agent's process tree: finding its members cheaply (/proc children files), sampling their memory,
killing every one of them, and reaping those that reparented to the supervisor.

Where the supervisor cannot be a subreaper (macOS, PCOORD_PORTABLE=1), an orphaned member reparents
elsewhere: the tree is then also found through the agent's session, which every member keeps unless
it calls setsid itself (those are still found while their parents live, as descendants).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from parallel_coordinator.supervisor.lifeline import keeper_pid, release
from parallel_coordinator.supervisor.platform import MECHANISMS

_TREE_REFRESH_S = 1.0  # finding the tree's members costs /proc reads: refresh membership rarely (NOTES.md)
_KILL_ROUNDS = 10  # rescans in kill(): each one catches descendants forked during the one before


class ProcessTree:
    """The agent and its descendants, with cached psutil handles for cheap RSS sampling."""

    def __init__(self, leader_pid: int) -> None:
        self.leader_pid = leader_pid
        self._me = psutil.Process()
        self._members: dict[int, psutil.Process] = {}
        self._refreshed = 0.0
        self.peak_rss_mb = 0.0

    def refresh(self, *, reuse: bool = True) -> None:
        # reuse=False builds fresh handles: a cached one whose pid was recycled would refuse to kill.
        try:
            pids = self._find()
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
        self._members = current
        self._refreshed = time.monotonic()

    def _find(self) -> set[int]:
        # A subreaper running one attempt: every descendant of ours belongs to this agent, but the
        # lifeline keeper (where there is one). Without a subreaper, the agent's session holds its orphans.
        pids = _descendants()
        if pids is None:
            pids = {proc.pid for proc in self._me.children(recursive=True)}
        if not MECHANISMS.prctl:
            pids |= _session_members(self.leader_pid)
        pids.discard(keeper_pid() or 0)
        return pids

    def rss_mb(self) -> float:
        if time.monotonic() - self._refreshed > _TREE_REFRESH_S:
            self.refresh()
        total = 0
        for proc in list(self._members.values()):
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        mb = total / (1024 * 1024)
        self.peak_rss_mb = max(self.peak_rss_mb, mb)
        return mb

    def kill(self) -> int:
        """SIGKILL the agent's process group and every descendant; returns how many were alive.

        Rescans until a scan finds nothing it has not already killed, so a descendant forked while
        we were killing (and reparented to us when its parent died) is caught too.
        """
        killed: dict[int, psutil.Process] = {}
        for round_ in range(_KILL_ROUNDS):
            self.refresh(reuse=round_ > 0)
            fresh = {pid: p for pid, p in self._members.items() if pid not in killed and _is_running(p)}
            if round_ == 0:
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

    def wait_gone(self, timeout: float = 2.0) -> None:
        """Wait until every killed member has died, then reap those that reparented to us."""
        psutil.wait_procs(list(self._members.values()), timeout=timeout)
        self.reap_strays()
        release(self.leader_pid)

    @staticmethod
    def reap_strays() -> None:
        """Collect exit statuses of reparented descendants so none stays a zombie."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


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


def _descendants() -> set[int] | None:
    """Our descendants, walked through /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN).

    Costs a few reads per member instead of psutil's scan of every process on the machine, which
    took milliseconds per call with 64 workers and their agents running. None where the kernel
    has no such files: the caller falls back to psutil.
    """
    if not MECHANISMS.children_files:
        return None
    seen: set[int] = set()
    todo = _read_children("self")
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(_read_children(pid))
    return seen


def _session_members(sid: int) -> set[int]:
    """Every process in session `sid` (the agent leads its own): one getsid per process on the machine."""
    found = set()
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getsid(pid) == sid:
                found.add(pid)
    return found


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
