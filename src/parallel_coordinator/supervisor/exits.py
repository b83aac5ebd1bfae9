"""Watching for agents' exits without a thread or a process each, and telling an exit without reaping.

Per agent: a pidfd where Linux has one, kqueue's NOTE_EXIT on macOS and the BSDs. Where neither
exists (Linux under PCOORD_PORTABLE=1), one descriptor for the whole shard that SIGCHLD makes
readable. Either only wakes the shard loop early: it still checks every agent on its periodic tick.
`leader_exited` leaves the exit status in place where waitid can (WNOWAIT): while the leader is an
unreaped zombie its pid, and its process group's number, cannot name anyone else.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading

from parallel_coordinator.supervisor.platform import MECHANISMS


def exit_fd(pid: int) -> int | None:
    """A file descriptor that becomes readable when our child `pid` exits, or None where there is none."""
    # The platform checks are the ones typeshed uses, so the type checker follows each branch on its platform.
    if sys.platform == "linux":
        if MECHANISMS.pidfd:
            with contextlib.suppress(OSError):
                return os.pidfd_open(pid)
    elif sys.platform != "win32":
        with contextlib.suppress(OSError):
            return _kqueue_fd(pid)
    return None


if sys.platform != "linux" and sys.platform != "win32":

    def _kqueue_fd(pid: int) -> int:
        queue = select.kqueue()
        try:
            exited = select.kevent(
                pid, filter=select.KQ_FILTER_PROC, flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,
                fflags=select.KQ_NOTE_EXIT,
            )
            queue.control([exited], 0, 0)
            return os.dup(queue.fileno())  # the registration belongs to the queue, which the copy keeps open
        finally:
            queue.close()


def child_exits_fd() -> int | None:
    """One descriptor readable after any child of this process exits (SIGCHLD); read it empty when woken.

    Needs the main thread (signal handlers live there); None elsewhere, and the loop's tick serves.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    read_end, write_end = os.pipe()
    for end in (read_end, write_end):
        os.set_blocking(end, False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # a handler, so the wakeup fd is written
    signal.siginterrupt(signal.SIGCHLD, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    return read_end


def drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass


def leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the agent has exited; leaves it unreaped where the platform can (waitid with WNOWAIT)."""
    if proc.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return proc.poll() is not None
    try:
        return waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return proc.poll() is not None
