"""Planning: a plan becomes a validated task graph; the pure scheduler and the estimates over it.

    plans       subtasks (a caller's or a stored session's) into a PlannedSession
    graph       TaskNode and TaskGraph: validation, critical paths
    scheduler   which ready task starts next (pure)
    strategies  how a caller's subtasks become the graph (auto, burst, ...)
    planner     decomposition of a plain task by a planner agent
    routing     the agent that best matches a subtask (BM25), and the index kept per catalogue
    rerank      the planner's choice among the router's top candidates: its request and answer
    estimates   learned durations and the time a session has left
    forecast    a plan's expected runs, tokens, dollars and seconds
"""

__all__ = [
    "estimates",
    "forecast",
    "graph",
    "planner",
    "plans",
    "rerank",
    "routing",
    "scheduler",
    "strategies",
]
