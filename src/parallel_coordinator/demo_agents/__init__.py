"""Bundled offline demo agents that follow the command agent protocol (standard library only)."""
