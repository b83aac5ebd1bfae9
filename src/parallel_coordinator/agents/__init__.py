"""Where agents come from: Claude Code agent files found on disk, parsed into AgentSpecs."""

from parallel_coordinator.agents.discovery import (
    AgentCatalog,
    default_agent_dirs,
    discover_agents,
    parse_agent_file,
)
from parallel_coordinator.agents.spec import AgentSpec, Diagnostic

__all__ = [
    "AgentCatalog",
    "AgentSpec",
    "Diagnostic",
    "default_agent_dirs",
    "discover_agents",
    "parse_agent_file",
]
