"""Pydantic models at the edges: tool inputs and outputs."""

from parallel_coordinator.schemas.inputs import CoordinateOptions, RetryPolicy, Subtask, parse_megabytes
from parallel_coordinator.schemas.outputs import (
    ActiveAgent,
    AgentFigures,
    AgentInfo,
    AgentListing,
    AttemptRecord,
    CancelResult,
    CoordinationResult,
    DiagnosticInfo,
    PerformanceFigures,
    PerformanceMetrics,
    PlannedTask,
    ProgressStatus,
    SessionMetrics,
    SystemHealth,
    TaskResult,
)

__all__ = [
    "ActiveAgent",
    "AgentFigures",
    "AgentInfo",
    "AgentListing",
    "AttemptRecord",
    "CancelResult",
    "CoordinateOptions",
    "CoordinationResult",
    "DiagnosticInfo",
    "PerformanceFigures",
    "PerformanceMetrics",
    "PlannedTask",
    "ProgressStatus",
    "RetryPolicy",
    "SessionMetrics",
    "Subtask",
    "SystemHealth",
    "TaskResult",
    "parse_megabytes",
]
