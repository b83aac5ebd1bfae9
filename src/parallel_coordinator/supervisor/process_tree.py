"""The agent's process tree: finding its members cheaply (/proc children files), sampling their memory,
killing every one of them, and reaping those that reparented to the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psutil

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
        # We are a subreaper running one attempt, so every descendant of ours belongs to this agent.
        # reuse=False builds fresh handles: a cached one whose pid was recycled would refuse to kill.
        pids = _descendants()
        if pids is None:
            try:
                current = {p.pid: p for p in self._me.children(recursive=True)}
            except psutil.Error:
                return
        else:
            current = {}
            for pid in pids:
                proc = self._members.get(pid) if reuse else None
                if proc is None:
                    try:
                        proc = psutil.Process(pid)
                    except psutil.Error:
                        continue
                current[pid] = proc
        for pid, proc in current.items():
            if reuse:
                self._members.setdefault(pid, proc)
            else:
                self._members[pid] = proc
        for pid in list(self._members):
            if pid not in current:
                del self._members[pid]
        self._refreshed = time.monotonic()

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


_HAVE_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _descendants() -> set[int] | None:
    """Our descendants, walked through /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN).

    Costs a few reads per member instead of psutil's scan of every process on the machine, which
    took milliseconds per call with 64 workers and their agents running. None where the kernel
    has no such files: the caller falls back to psutil.
    """
    if not _HAVE_CHILDREN_FILES:
        return None
    seen: set[int] = set()
    todo = _read_children("self")
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(_read_children(pid))
    return seen


def exit_fd(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` exits (Linux 5.3+), or None where there is none."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
