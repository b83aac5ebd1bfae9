"""The bundled demo agents (command agents run by `pcoord demo`, standard library only): each module is
one agent's program.
"""

__all__ = [
    "complexity",
    "loc",
    "report",
    "secret_scan",
    "todos",
]
