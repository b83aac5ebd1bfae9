"""The engine: sessions, their run loop and every decision about attempts. Knows no MCP, no presentation
and no runner by name. Its public surface is its modules:

    coordinator  the facade: start, resume, get, list, cancel, health
    policy       SessionPolicy, the frozen options a session runs by
    decisions    after an attempt: retry, back off, next agent, stop (pure)
    acceptance   a claimed success against the output schema and signs of work (pure)
    batching     burst batching's prompt and split (pure)
    reuse        identical tasks run once
    replicas     a subtask's replicas merged: all, or the majority's answer (pure)
    budget       a session's spend, and its budget: reached, it stops
    slots        per-agent concurrency and per-runner rate-limit throttles
    throttle     one runner's AIMD rate-limit throttle
    admission    the machine gate: CPU and memory before an agent starts
    warmup       prompt-cache warm-up: an agent's first run goes alone until it answers (pure)
    attempts     one attempt: the supervisor job, its events, its result
    isolation    a git worktree per attempt, when asked
    quality      an attempt's QA checks (qa/), as supervised jobs
    tasks        one task to its end: retries, fallbacks, finishing
    run_loop     a session's loop: start, wait, stop, finish
    one_off      the planner and synthesizer runs outside the graph
    summary      a session's summary in words
    events       session events and the performance log
    recorder     the one writer of session state to the store
    read_model   SessionView, one view of a live or stored session
    session      a session's live state
    catalog      the agents, with the configuration's agent_pool overrides
    health       the machine, the queue and alerts; the sampler
    figures      performance figures over task records and stored attempts
    cancel       cancel across servers, through the store
    startup      what a server does as it starts
"""

__all__ = [
    "acceptance",
    "admission",
    "attempts",
    "batching",
    "budget",
    "cancel",
    "catalog",
    "coordinator",
    "decisions",
    "events",
    "figures",
    "health",
    "isolation",
    "one_off",
    "policy",
    "quality",
    "read_model",
    "recorder",
    "replicas",
    "reuse",
    "run_loop",
    "session",
    "slots",
    "startup",
    "summary",
    "tasks",
    "throttle",
    "warmup",
]
