"""The agents a session may use: the catalogue on disk, with the configuration file's agent_pool overrides."""

from __future__ import annotations

from typing import Any

from parallel_coordinator.agents import AgentCatalog, CatalogCache
from parallel_coordinator.config.settings import Settings


class Agents:
    def __init__(self, settings: Settings) -> None:
        self.files = CatalogCache(settings.agent_dirs)
        self._pool = settings.agent_pool

    async def read(self) -> AgentCatalog:
        """Off the event loop; only files that changed since the last read are parsed again."""
        return self._with_overrides(await self.files.read())

    def read_now(self) -> AgentCatalog:
        """The same, on the calling thread: for scripts and tests."""
        return self._with_overrides(self.files.read_now())

    def _with_overrides(self, catalog: AgentCatalog) -> AgentCatalog:
        for name, override in self._pool.items():
            agent = catalog.agents.get(name)
            if agent is None:
                continue
            changes: dict[str, Any] = {}
            if override.max_concurrent is not None:
                changes["max_concurrent"] = override.max_concurrent
            if override.priority is not None:
                changes["priority"] = override.priority
            catalog.agents[name] = agent.model_copy(update=changes)
        return catalog
