"""The supervisor package's surface: `__all__` names exactly its public names, and importing it pulls in
nothing heavy (every pool worker imports it).
"""

from __future__ import annotations

import subprocess
import sys
import types

import parallel_coordinator.supervisor as supervisor


def test_all_names_exactly_the_public_names_of_the_package() -> None:
    public = {
        name for name, value in vars(supervisor).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(supervisor.__all__) == sorted(public)


def test_importing_it_imports_no_async_validation_or_protocol_library() -> None:
    heavy = ("anyio", "pydantic", "mcp", "networkx", "loky", "distributed")
    code = f"import sys, parallel_coordinator.supervisor; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
