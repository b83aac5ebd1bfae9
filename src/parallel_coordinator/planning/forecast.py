"""A plan's forecast: how many agent runs, tokens, dollars and seconds it is expected to take.

Tokens and dollars per run come from what the agent used before (a moving average of its finished
runs); for an agent with no history, from other agents' runs on the same model tier; failing that, from
PRIOR_RUN below. Runners that report no usage (command agents) cost nothing. Seconds is the same lower
bound the status's time-left estimate uses, for the whole graph.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from parallel_coordinator.planning.estimates import DurationEstimator, remaining_seconds
from parallel_coordinator.planning.graph import TaskGraph

# What one claude run is taken to use before anything is known of it: 28K prompt tokens (a lean launch's
# prefix plus the task and a few tool results, mostly read from the prompt cache) and 2K written. Priced at
# each tier's list prices per million tokens (input, output) of late 2025; an unknown model is priced as
# the dearest tier, so that a forecast errs on the side of asking.
PRIOR_INPUT_TOKENS = 28_000
PRIOR_OUTPUT_TOKENS = 2_000
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {"haiku": (1.0, 5.0), "sonnet": (3.0, 15.0), "opus": (5.0, 25.0)}
_DEAREST = "opus"
_HISTORY_KEYS = 1000  # agents and tiers remembered; the least recently seen go first


@dataclass(frozen=True)
class RunCost:
    tokens: float
    usd: float


def tier_of(model: str | None) -> str:
    """'claude-sonnet-5-5' -> 'sonnet'; an alias stays itself; unknown or `inherit` -> the dearest tier."""
    name = (model or "").strip().lower()
    for tier in PRICES_PER_MTOK:
        if tier in name:
            return tier
    return _DEAREST


def prior_run(model: str | None) -> RunCost:
    price_in, price_out = PRICES_PER_MTOK[tier_of(model)]
    usd = (PRIOR_INPUT_TOKENS * price_in + PRIOR_OUTPUT_TOKENS * price_out) / 1_000_000
    return RunCost(tokens=PRIOR_INPUT_TOKENS + PRIOR_OUTPUT_TOKENS, usd=usd)


class UsageHistory:
    """Per agent and per model tier: a moving average of the tokens and dollars of finished runs."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self._by_agent: OrderedDict[str, RunCost] = OrderedDict()
        self._by_tier: OrderedDict[str, RunCost] = OrderedDict()

    def observe(self, agent: str, model: str | None, tokens: int, usd: float) -> None:
        """One finished run; without a model (a run read back from the store) only the agent's average learns."""
        seen = RunCost(float(tokens), float(usd))
        tables = [(self._by_agent, agent)] + ([(self._by_tier, tier_of(model))] if model else [])
        for table, key in tables:
            before = table.pop(key, None)
            table[key] = seen if before is None else RunCost(
                self.alpha * seen.tokens + (1 - self.alpha) * before.tokens,
                self.alpha * seen.usd + (1 - self.alpha) * before.usd,
            )
            while len(table) > _HISTORY_KEYS:
                table.popitem(last=False)

    def seed(self, runs: Iterable[tuple[str, str | None, int, float]]) -> None:
        """Learn from past runs, oldest first: (agent, model, tokens, dollars)."""
        for agent, model, tokens, usd in runs:
            self.observe(agent, model, tokens, usd)

    def per_run(self, agent: str, model: str | None) -> RunCost:
        return self._by_agent.get(agent) or self._by_tier.get(tier_of(model)) or prior_run(model)

    def known(self, agent: str) -> bool:
        return agent in self._by_agent


@dataclass(frozen=True)
class Forecast:
    runs: int
    tokens: int
    usd: float
    seconds: float
    # Agents priced from the prior (no run of theirs or of their model tier seen yet).
    from_prior: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float | int]:
        return {"runs": self.runs, "tokens": self.tokens, "usd": round(self.usd, 6), "seconds": round(self.seconds, 1)}

    def describe(self) -> str:
        text = f"{self.runs} agent run(s), about {self.tokens:,} tokens, ${self.usd:.2f} and {self.seconds:.0f} s"
        if self.from_prior:
            text += f" (priced from the default prior for {', '.join(self.from_prior[:5])}: no runs seen yet)"
        return text


@dataclass(frozen=True)
class PlannedRun:
    """One run the plan will make: its agent, the model it asks for, whether its runner reports usage."""

    agent: str
    model: str | None
    costs_tokens: bool
    expected_s: float | None = None


def forecast(
    graph: TaskGraph, runs: Mapping[str, PlannedRun], history: UsageHistory, durations: DurationEstimator, *,
    slots: int, token_cap: int | None, extra_runs: Iterable[PlannedRun] = (),
    skip: Callable[[str], bool] = lambda _: False,
) -> Forecast:
    """The forecast for the graph's tasks (those `skip` does not keep) plus `extra_runs` (a synthesizer).

    `token_cap` is the per-run token budget: no run is expected to pass it, since the supervisor stops one there.
    """
    tokens = usd = 0.0
    from_prior: list[str] = []
    remaining: dict[str, float] = {}
    count, after_s = 0, 0.0
    planned = [(task_id, runs[task_id]) for task_id in graph.nodes if not skip(task_id)]
    for task_id, run in [*planned, *(("", run) for run in extra_runs)]:
        count += 1
        expected = durations.estimate(run.agent, run.expected_s)
        if task_id:
            remaining[task_id] = expected
        else:
            after_s += expected  # runs once the graph is done
        if not run.costs_tokens:
            continue
        cost = history.per_run(run.agent, run.model)
        if token_cap is not None and cost.tokens > token_cap:
            cost = RunCost(token_cap, cost.usd * token_cap / cost.tokens)
        tokens += cost.tokens
        usd += cost.usd
        if cost == prior_run(run.model) and not history.known(run.agent) and run.agent not in from_prior:
            from_prior.append(run.agent)
    for task_id in graph.nodes:
        remaining.setdefault(task_id, 0.0)
    seconds = (remaining_seconds(graph, remaining, slots) if graph.nodes else 0.0) + after_s
    return Forecast(runs=count, tokens=round(tokens), usd=usd, seconds=seconds, from_prior=tuple(from_prior))
