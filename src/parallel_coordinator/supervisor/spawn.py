"""Starting the agent: its argv resolved as exec would, in its own session, killed when its supervisor dies.

Where Linux offers it, the kernel kills the agent with its supervisor (PR_SET_PDEATHSIG): the
vfork-friendly path puts `setpriv --pdeathsig KILL` in front of the agent; where there is no such
setpriv, a `preexec_fn` sets the signal instead (slower: subprocess must fork()). Elsewhere (macOS,
or PCOORD_PORTABLE=1) a small shell gate in front of the agent waits until the supervisor's lifeline
keeper guards the agent's session (lifeline.py), so no agent ever runs unguarded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.lifeline import guard
from parallel_coordinator.supervisor.platform import LIBC, MECHANISMS, setpriv_pdeathsig

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

# `sh -c GATE sh STDIN_PATH ARGV...` with the gate pipe as stdin: wait for the shard's go, take the agent's
# stdin from its path, become the agent. End of file instead of a go means the shard died before the
# keeper guarded us: the agent never starts. (A path, not a descriptor number: dash redirects only fds 0-9.)
_GATE = 'read -r _ || exit 125; exec 0<"$1" || exit 125; shift; exec "$@"'


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Runs in a child between fork and exec: it gets `sig` when the thread that started it dies (Linux only)."""
    if LIBC is not None:
        LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def become_subreaper() -> None:
    """Orphaned grandchildren of the agent reparent to us, so the whole tree stays findable (Linux only)."""
    if LIBC is not None:
        LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def pdeathsig_wrapper() -> list[str] | None:
    """`setpriv --pdeathsig KILL --` (util-linux 2.33+), or None where there is no such setpriv.

    A `preexec_fn` makes subprocess fork() the whole worker interpreter and run Python in the child;
    without one it uses vfork(). Setting PR_SET_PDEATHSIG through setpriv, which execs the agent in
    the same process, costs one small exec instead: ~1.9 ms of CPU per agent against ~3.6 ms.
    Checked once per worker (the pool's fork server checks it before forking them).
    """
    return setpriv_pdeathsig()


def _resolve(argv0: str, env: dict[str, str], cwd: str | None) -> str:
    """Where exec would find argv[0]; raises as Popen would when it cannot be started.

    With setpriv in front, Popen itself always succeeds: we look first, so a missing or
    non-executable command is still reported as spawn_failed, not as an exit code from setpriv.
    """
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(2, "No such file or directory", cwd)
    if os.sep in argv0:
        candidates = [os.path.join(cwd or "", argv0)]
    else:
        candidates = [os.path.join(cwd or "", folder, argv0) for folder in os.get_exec_path(env)]
    denied = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied is not None:
        raise PermissionError(13, "Permission denied", denied)
    raise FileNotFoundError(2, "No such file or directory", argv0)


def start_agent(job: SupervisorJob, stdin_path: Path | None) -> subprocess.Popen[bytes] | str:
    """Start the job's agent with `stdin_path` as its stdin (None: /dev/null); or, when it cannot be started, say why.

    The shard made itself the subreaper of its agents' trees first (`become_subreaper`). Where the
    kernel kills the agent with its shard, the lifeline keeper still guards the agent's session:
    PR_SET_PDEATHSIG reaches the agent alone, the keeper its children too.
    """
    env = {**(os.environ if job.env is None else job.env), **job.invocation.env}
    argv = job.invocation.argv
    if not MECHANISMS.prctl:
        return _start_gated(job, stdin_path, env)
    wrapper = pdeathsig_wrapper()
    try:
        if wrapper is not None:
            _resolve(argv[0], env, job.cwd)
        with _stdin(stdin_path) as stdin:
            proc = subprocess.Popen(
                [*wrapper, *argv] if wrapper else argv, stdin=stdin, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=job.cwd, env=env, start_new_session=True,
                preexec_fn=None if wrapper else die_with_parent, close_fds=True,
            )
    except OSError as exc:
        return _why_not_started(job, exc)
    with contextlib.suppress(OSError):  # the kernel still kills the agent itself with its shard
        guard(proc.pid)
    return proc


def _stdin(path: Path | None) -> IO[bytes]:
    return open(path if path is not None else os.devnull, "rb")


def _start_gated(job: SupervisorJob, stdin_path: Path | None, env: dict[str, str]) -> subprocess.Popen[bytes] | str:
    """The POSIX path: the agent waits at the gate until the lifeline keeper guards its session."""
    argv = job.invocation.argv
    gate_read, gate_write = os.pipe()
    try:
        _resolve(argv[0], env, job.cwd)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _GATE, "sh", os.path.abspath(stdin_path or os.devnull), *argv], stdin=gate_read,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=job.cwd, env=env, start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        os.close(gate_write)
        return _why_not_started(job, exc)
    finally:
        os.close(gate_read)
    try:
        guard(proc.pid)  # the agent leads its own session: its pid names it
    except OSError as exc:
        os.close(gate_write)  # the gate sees end of file: the agent never starts
        proc.communicate()  # reaps it and closes its pipes
        return f"cannot start {argv[0]!r}: no watcher to kill it if its supervisor dies ({exc})"
    os.write(gate_write, b"go\n")
    os.close(gate_write)
    return proc


def _why_not_started(job: SupervisorJob, exc: OSError) -> str:
    argv = job.invocation.argv
    if isinstance(exc, FileNotFoundError):
        missing = job.cwd if job.cwd and not Path(job.cwd).is_dir() else argv[0]
        what = "working directory" if missing == job.cwd else "command"
        return f"{what} not found: {missing!r}"
    return f"cannot start {argv[0]!r}: {exc.strerror or exc}"
