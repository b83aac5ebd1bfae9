"""The lifeline keeper: a small process that kills a dead shard's agents, with every member of their sessions.

Run as a script (`python -I lifeline_keeper.py`, standard library and psutil only). Its stdin is a pipe
whose other end only its supervisor holds: `+PID` lines name each agent's session (the agent leads it),
`-PID` lines drop one that was reaped. End of file means the supervisor is gone, however it died:
every session still named is killed, its process group first, then any member that left the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def _kill_sessions(sessions: set[int]) -> None:
    for sid in sessions:
        with contextlib.suppress(OSError):
            os.killpg(sid, signal.SIGKILL)
    if not sessions:
        return
    import psutil  # only now: most keepers never need it

    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getsid(pid) in sessions:
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    # In a process group of its own already (no terminal signal reaches it); a hangup must not end it either.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    sessions: set[int] = set()  # bounded by the agents its supervisor runs at once
    for line in sys.stdin.buffer:
        word = line.strip()
        with contextlib.suppress(ValueError):
            if word.startswith(b"+"):
                sessions.add(int(word[1:]))
            elif word.startswith(b"-"):
                sessions.discard(int(word[1:]))
    _kill_sessions(sessions)


if __name__ == "__main__":
    main()
