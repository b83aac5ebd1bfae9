"""Starting the agent: its argv resolved as exec would, in its own session, killed when its supervisor dies.

The vfork-friendly path puts `setpriv --pdeathsig KILL` in front of the agent; where there is no such
setpriv, a `preexec_fn` sets the parent-death signal instead (slower: subprocess must fork()).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
from pathlib import Path

from parallel_coordinator.supervisor.job import SupervisorJob

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded once here: between fork and exec only the already-bound prctl call may run.
_LIBC = _load_libc()


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Runs in a child between fork and exec: it gets `sig` when the thread that started it dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def become_subreaper() -> None:
    """Orphaned grandchildren of the agent reparent to us, so the whole tree stays findable."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_SETPRIV: list[str] | None = None
_SETPRIV_CHECKED = False


def pdeathsig_wrapper() -> list[str] | None:
    """`setpriv --pdeathsig KILL --` (util-linux 2.33+), or None where there is no such setpriv.

    A `preexec_fn` makes subprocess fork() the whole worker interpreter and run Python in the child;
    without one it uses vfork(). Setting PR_SET_PDEATHSIG through setpriv, which execs the agent in
    the same process, costs one small exec instead: ~1.9 ms of CPU per agent against ~3.6 ms.
    Checked once per worker (the pool's fork server checks it before forking them).
    """
    global _SETPRIV, _SETPRIV_CHECKED
    if not _SETPRIV_CHECKED:
        _SETPRIV_CHECKED = True
        path = shutil.which("setpriv", path=os.defpath + os.pathsep + os.environ.get("PATH", ""))
        if path is not None:
            try:
                usage = subprocess.run([path, "--help"], capture_output=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                usage = b""
            if b"--pdeathsig" in usage:
                _SETPRIV = [path, "--pdeathsig", "KILL", "--"]
    return _SETPRIV


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


def start_agent(job: SupervisorJob, stdin_path: Path) -> subprocess.Popen[bytes] | str:
    """Start the job's agent with `stdin_path` as its stdin; or, when it cannot be started, say why.

    Makes this process the subreaper of the agent's tree first, so its orphans stay ours to find.
    """
    env = {**(os.environ if job.env is None else job.env), **job.invocation.env}
    become_subreaper()
    argv = job.invocation.argv
    wrapper = pdeathsig_wrapper()
    try:
        if wrapper is not None:
            _resolve(argv[0], env, job.cwd)
        with stdin_path.open("rb") as stdin:
            return subprocess.Popen(
                [*wrapper, *argv] if wrapper else argv, stdin=stdin, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=job.cwd, env=env, start_new_session=True,
                preexec_fn=None if wrapper else die_with_parent, close_fds=True,
            )
    except FileNotFoundError:
        missing = job.cwd if job.cwd and not Path(job.cwd).is_dir() else argv[0]
        what = "working directory" if missing == job.cwd else "command"
        return f"{what} not found: {missing!r}"
    except (PermissionError, OSError) as exc:
        return f"cannot start {argv[0]!r}: {exc.strerror or exc}"
