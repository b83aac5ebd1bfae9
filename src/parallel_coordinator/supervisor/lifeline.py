"""The shard's end of its lifeline keeper: a keeper process kills the shard's agent sessions, every
member of them, when the shard dies however it died (see lifeline_keeper.py). PR_SET_PDEATHSIG, where
Linux has it, reaches only the agent itself; the keeper reaches its children too.

One keeper per shard process, started on first use. The pipe's write end is close-on-exec and
dropped in forked children, so only this process holds it: the keeper sees end of file exactly
when this process is gone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

_KEEPER_SCRIPT = str(Path(__file__).with_name("lifeline_keeper.py"))
_lock = threading.Lock()
_keeper: tuple[int, int] | None = None  # (keeper pid, write end of its lifeline)
_guarded: set[int] = set()  # the sessions guarded now: bounded by the agents this shard runs at once


def _start_keeper() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-I", _KEEPER_SCRIPT], dict(os.environ),
            # Not our stdout: a Dask supervisor's is the pipe its outcome travels in, read to its end.
            file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0), (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
            setpgroup=0,  # a group of its own: a terminal's Ctrl-C to ours must not reach it
        )
    except OSError:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return pid, write_end


def _send(line: bytes) -> None:
    global _keeper
    with _lock:
        for _ in range(2):  # a keeper that died is replaced once
            try:
                if _keeper is None:
                    _keeper = _start_keeper()
                    # The new keeper learns every session the dead one guarded, not only those from now on.
                    for session in _guarded:
                        os.write(_keeper[1], b"+%d\n" % session)
                os.write(_keeper[1], line)
                return
            except OSError:
                _drop()
        raise OSError(f"the lifeline keeper {_KEEPER_SCRIPT!r} does not read its lifeline")


def guard(session: int) -> None:
    """From now on, the agent session `session` is killed when this process dies. Raises OSError if it cannot be."""
    _send(b"+%d\n" % session)
    _guarded.add(session)


def release(session: int) -> None:
    """The session's agent tree is gone (killed and reaped): its number may be reused, so forget it."""
    _guarded.discard(session)
    if _keeper is not None:
        with contextlib.suppress(OSError):
            _send(b"-%d\n" % session)


def keeper_pid() -> int | None:
    """The keeper's pid (it is our child, but not part of any agent's tree), or None before one started."""
    return _keeper[0] if _keeper is not None else None


def _drop() -> None:
    global _keeper
    if _keeper is not None:
        with contextlib.suppress(OSError):
            os.close(_keeper[1])
        _keeper = None


def _forget_in_child() -> None:
    # A forked child must not hold our lifeline open (the keeper would outlive us), nor write to it.
    global _keeper, _lock
    _lock = threading.Lock()
    _drop()
    _guarded.clear()


os.register_at_fork(after_in_child=_forget_in_child)
