"""Where agents come from: Claude Code agent files found on disk, parsed into AgentSpecs."""

from parallel_coordinator.agents.catalog_cache import CatalogCache
from parallel_coordinator.agents.discovery import default_agent_dirs, discover_agents, parse_agent_file
from parallel_coordinator.agents.spec import AgentCatalog, AgentSpec, Diagnostic

__all__ = [
    "AgentCatalog",
    "AgentSpec",
    "CatalogCache",
    "Diagnostic",
    "default_agent_dirs",
    "discover_agents",
    "parse_agent_file",
]
