"""What this machine offers the supervisor, decided once at import: each Linux mechanism, or its POSIX fallback.

`PCOORD_PORTABLE=1` in the environment turns every Linux mechanism off, so Linux can run the paths a
Mac takes (the suite runs that way in `make test-portable`). Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

PORTABLE_ENV = "PCOORD_PORTABLE"


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@dataclass(frozen=True)
class Mechanisms:
    """Which Linux mechanisms the supervisor may use here; each False means its POSIX fallback runs."""

    portable: bool  # PCOORD_PORTABLE=1: every mechanism below forced off
    prctl: bool  # PR_SET_PDEATHSIG and PR_SET_CHILD_SUBREAPER, through libc
    children_files: bool  # /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)
    pidfd: bool  # os.pidfd_open (Linux 5.3+)
    setpriv: bool  # a setpriv that may know --pdeathsig (asked only when first needed: it costs a process)


def _detect(environ: os._Environ[str] | dict[str, str]) -> Mechanisms:
    portable = environ.get(PORTABLE_ENV, "").strip() not in ("", "0")
    libc = _load_libc()
    return Mechanisms(
        portable=portable,
        prctl=not portable and libc is not None and hasattr(libc, "prctl"),
        children_files=not portable and os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children"),
        pidfd=not portable and hasattr(os, "pidfd_open"),
        setpriv=not portable and shutil.which("setpriv", path=_search_path(environ)) is not None,
    )


def _search_path(environ: os._Environ[str] | dict[str, str]) -> str:
    return os.defpath + os.pathsep + environ.get("PATH", "")


MECHANISMS = _detect(os.environ)
# Loaded once here: between fork and exec only an already-bound prctl call may run.
LIBC = _load_libc() if MECHANISMS.prctl else None

_SETPRIV: list[str] | None = None
_SETPRIV_CHECKED = False


def setpriv_pdeathsig() -> list[str] | None:
    """`setpriv --pdeathsig KILL --` (util-linux 2.33+), or None where there is no such setpriv.

    Asked once per process, on first use (the pool's fork server asks before forking its workers).
    """
    global _SETPRIV, _SETPRIV_CHECKED
    if not _SETPRIV_CHECKED:
        _SETPRIV_CHECKED = True
        path = shutil.which("setpriv", path=_search_path(os.environ)) if MECHANISMS.setpriv else None
        if path is not None:
            try:
                usage = subprocess.run([path, "--help"], capture_output=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                usage = b""
            if b"--pdeathsig" in usage:
                _SETPRIV = [path, "--pdeathsig", "KILL", "--"]
    return _SETPRIV
