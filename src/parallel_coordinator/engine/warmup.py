"""Prompt-cache warm-up: of several runs of one agent, the first goes alone until it has answered.

The API caches a prompt's prefix once a response to it has begun; runs sent before that each write the
cache again, at 1.25 times the price of input where a read costs a tenth. So a session starts the first
run of such an agent at once and the rest once it has answered, its run has ended, or `wait_s` has
passed, whichever comes first: a held run never waits on a run that died, and the slot it would take
stays free for other agents meanwhile. Pure state; the run loop asks it, attempts tell it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PromptWarmup:
    wait_s: float
    # agent -> when its held runs start at the latest (monotonic seconds); one entry per agent warming now.
    _holding: dict[str, float] = field(default_factory=dict)
    # Agents whose first run has answered (or whose wait is over): at most the session's agents.
    _warm: set[str] = field(default_factory=set)

    def may_start(self, agent: str, now: float) -> bool:
        """False while `agent`'s first run is warming its cache and the wait is not over."""
        until = self._holding.get(agent)
        if until is None:
            return True
        if now >= until:
            self._release(agent)
            return True
        return False

    def started(self, agent: str, now: float) -> None:
        """A run of `agent` was started: if it is the first, the agent's other runs wait for its answer."""
        if agent not in self._warm and agent not in self._holding:
            self._holding[agent] = now + self.wait_s

    def answered(self, agent: str) -> None:
        """A run of `agent` has had its first response: its prompt is cached, the held runs may go."""
        self._release(agent)

    def ended(self, agent: str) -> None:
        """A run of `agent` ended, answered or not: holding the others longer gains nothing."""
        self._release(agent)

    def next_release(self) -> float | None:
        """When the earliest wait is over, if any run is held."""
        return min(self._holding.values(), default=None)

    def reason(self, now: float) -> str | None:
        """Why runs are held, for the queue's reason; None when none is."""
        if not self._holding:
            return None
        agents = ", ".join(repr(agent) for agent in sorted(self._holding))
        left = max(0.0, min(self._holding.values()) - now)
        return (
            f"warming the prompt cache: the first run of {agents} goes alone until it has answered, so the"
            f" others read its cache (at most {left:.1f} s more; options.cache_warmup: false starts all at once)"
        )

    def _release(self, agent: str) -> None:
        self._holding.pop(agent, None)
        self._warm.add(agent)
