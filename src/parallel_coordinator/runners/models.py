"""The model table for agents that leave the model open: one tier per kind of work, chosen per run.

The configuration file's `models` overrides these names; `priority_mode` moves a run up a tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec

DEFAULT_MODELS: Mapping[str, str] = {"simple": "haiku", "default": "sonnet", "critical": "opus"}
_TIERS = ("simple", "default", "critical")


def choose_model(agent: AgentSpec, task_priority: int, models: Mapping[str, str], mode: str = "speed") -> str | None:
    """Small for simple work, largest for critical; "quality" mode moves every run one tier up.

    An agent that names its model keeps it: the choice is only for agents that say `inherit` or nothing.
    """
    if agent.model and agent.model.strip().lower() != "inherit":
        return agent.model
    if task_priority == 1 or agent.priority == "critical":
        tier = 2
    elif task_priority >= 4 or agent.priority == "low":
        tier = 0
    else:
        tier = 1
    if mode == "quality":
        tier = min(tier + 1, 2)
    return models.get(_TIERS[tier])
