"""Parallel Coordinator: an MCP server that runs one task on many agents at once.

Kept import-light on purpose: every pool worker imports this package before it can run a
supervisor, so nothing heavy (pydantic, mcp, networkx) may be imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
