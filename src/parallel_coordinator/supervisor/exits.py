"""Watching for the agent's exit: a file descriptor that turns readable when a child process exits.

A pidfd where Linux has one; else kqueue's NOTE_EXIT (macOS, BSD); else a thread that waits without
reaping (waitid with WNOWAIT: the Popen still collects the exit status) and writes to a pipe.
The caller owns the descriptor and closes it. It only wakes the watch loop early: the loop still
polls the process on every tick.
"""

from __future__ import annotations

import contextlib
import os
import select
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
    with contextlib.suppress(OSError, RuntimeError):
        return _thread_fd(pid)
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


def _thread_fd(pid: int) -> int | None:
    """One thread per watched process (the supervisor watches one at a time), ended by the exit it waits for."""
    if sys.platform == "darwin" and sys.version_info < (3, 13):
        return None  # no os.waitid there before 3.13 (kqueue serves)
    read_end, write_end = os.pipe()

    def wait_then_signal() -> None:
        with contextlib.suppress(OSError):  # ChildProcessError: already reaped
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # waits without reaping: Popen still collects it
        with contextlib.suppress(OSError):  # the reader may have closed its end already
            os.write(write_end, b"x")
        os.close(write_end)

    try:
        threading.Thread(target=wait_then_signal, name=f"pcoord-exit-{pid}", daemon=True).start()
    except RuntimeError:
        os.close(read_end)
        os.close(write_end)
        raise
    return read_end
