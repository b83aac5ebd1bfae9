"""Slots: how many runs each agent has going (against its max_concurrent), and each runner's rate-limit throttle.

Shared by every session of the server, since both limits belong to the agent or the account behind
a runner. Whoever frees a slot wakes the sessions and fallbacks waiting for one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable

import anyio

from parallel_coordinator.agents import AgentSpec
from parallel_coordinator.engine.session import RECHECK_S
from parallel_coordinator.engine.throttle import RunnerThrottle


class Slots:
    def __init__(self, runner_limit: int, on_freed: Callable[[], None]) -> None:
        self.running: Counter[str] = Counter()  # agent name -> runs holding one of its slots
        self.throttles: dict[str, RunnerThrottle] = {}
        self._runner_limit = runner_limit
        self._on_freed = on_freed
        self._freed = anyio.Event()

    @property
    def active(self) -> int:
        return sum(self.running.values())

    def throttle(self, runner: str) -> RunnerThrottle:
        if runner not in self.throttles:
            self.throttles[runner] = RunnerThrottle(max_limit=self._runner_limit)
        return self.throttles[runner]

    def admit(self, agent: AgentSpec) -> bool:
        """True, with the run counted by its runner's throttle, when `agent` may start one more run now."""
        if agent.max_concurrent is not None and self.running[agent.name] >= agent.max_concurrent:
            return False
        return self.throttle(agent.runner).try_start()

    def take(self, agent: str) -> None:
        self.running[agent] += 1

    def give_back(self, agent: str) -> None:
        self.running[agent] -= 1
        self.freed()

    @property
    def next_freed(self) -> anyio.Event:
        """The event the next `freed()` sets."""
        return self._freed

    def freed(self) -> None:
        """A slot came free: wake whatever waits for one (fallbacks here, sessions through on_freed)."""
        self._freed.set()
        self._freed = anyio.Event()
        self._on_freed()

    async def move(self, held: str, wanted: AgentSpec, stopping: Callable[[], bool]) -> str:
        """Give back `held`'s slot and take one of `wanted`'s, waiting for room; `held` again if stopped meanwhile."""
        self.give_back(held)
        while wanted.max_concurrent is not None and self.running[wanted.name] >= wanted.max_concurrent:
            if stopping():
                self.take(held)
                return held
            freed = self._freed
            with anyio.move_on_after(RECHECK_S):
                await freed.wait()
        self.take(wanted.name)
        return wanted.name

    def throttle_reason(self, runners: Iterable[str]) -> str | None:
        """Why a session using these runners waits on a rate limit, if it does."""
        wanted = set(runners)
        for runner, throttle in self.throttles.items():
            if throttle.throttled and runner in wanted:
                asked = f" (the API asked for {throttle.asked_s:.1f} s)" if throttle.asked_s is not None else ""
                return (
                    f"backing off {runner!r} after {throttle.rate_limits} rate limit(s): at most"
                    f" {max(1, int(throttle.limit))} at once, next start in {throttle.pause_left():.1f} s{asked}"
                )
        return None

    @staticmethod
    def session_full_reason(max_agents: int) -> str:
        """Why a session's ready tasks wait while its max_agents runs go (the engine and the views say it alike)."""
        return f"all {max_agents} of the session's agent slots are busy (max_agents)"

    def busy_reason(self, agents: Iterable[AgentSpec]) -> str | None:
        """Why these agents' ready tasks wait, when it is their own max_concurrent: every such agent is named
        (the first three), so a task of one is never told another one holds it."""
        held = sorted({
            a.name for a in agents if a.max_concurrent is not None and self.running[a.name] >= a.max_concurrent
        })
        if not held:
            return None
        if len(held) == 1:
            return f"agent {held[0]!r} runs {self.running[held[0]]} at once, its max_concurrent"
        named = ", ".join(f"{name!r} ({self.running[name]})" for name in held[:3])
        more = f" and {len(held) - 3} more" if len(held) > 3 else ""
        return f"agents {named}{more} run as many at once as their max_concurrent allows"

    def resume_in(self, runners: Iterable[str]) -> float:
        """Seconds until the first of these runners' paused throttles takes new runs again; inf if none is paused."""
        pauses = [self.throttles[r].pause_left() for r in set(runners) if r in self.throttles]
        return min((p for p in pauses if p > 0), default=math.inf)
