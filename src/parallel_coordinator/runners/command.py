"""The command runner: any executable that speaks the command agent protocol (CONTRACT.md).

stdin gets one JSON request, stdout is the result, stderr is log text with optional JSON progress
lines, exit status 0 is success.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import TYPE_CHECKING

from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import (
    AttemptOutcome,
    Invocation,
    RunChoices,
    RunResult,
    TaskRequest,
    describe_exit,
)

if TYPE_CHECKING:
    from parallel_coordinator.agents.spec import AgentSpec


def expand_argv(agent: AgentSpec) -> list[str]:
    """The agent's `command` with `{python}` (this interpreter) and `{agent_dir}` filled in."""
    if not agent.command:
        raise RunnerUnavailableError(f"agent {agent.name!r} has runner 'command' but no `command` argv")
    agent_dir = str(agent.path.parent) if agent.path else os.getcwd()
    return [
        part.replace("{python}", sys.executable).replace("{agent_dir}", agent_dir) for part in agent.command
    ]


def resolve_executable(argv0: str, agent_name: str) -> str:
    """Find argv[0] the way exec would, so a missing command fails with its name, before any spawn."""
    if os.sep in argv0:
        if not os.path.isfile(argv0):
            raise RunnerUnavailableError(f"command not found: {argv0!r} (agent {agent_name!r})")
        if not os.access(argv0, os.X_OK):
            raise RunnerUnavailableError(f"command is not executable: {argv0!r} (agent {agent_name!r})")
        return argv0
    found = shutil.which(argv0)
    if found is None:
        raise RunnerUnavailableError(
            f"command not found: {argv0!r} (agent {agent_name!r}); it is not on PATH"
        )
    return found


class CommandRunner:
    kind = "command"
    env_passthrough: tuple[str, ...] = ()
    output_is_stdout = True
    batches = False  # a command starts in milliseconds: nothing to save by sharing a run
    default_memory_mb = 50.0  # usually a small script
    counts_tokens = False
    warms_prompt_cache = False
    enforces_schema = False  # its output is parsed and validated after the run

    def for_run(self, agent: AgentSpec, choices: RunChoices) -> AgentSpec:
        return agent

    def invocation(self, agent: AgentSpec, request: TaskRequest) -> Invocation:
        argv = expand_argv(agent)
        resolve_executable(argv[0], agent.name)
        payload = {
            "session_id": request.session_id,
            "task_id": request.task_id,
            "agent": agent.name,
            "description": request.description,
            "task_description": request.task_description,
            "context": request.context,
            # A dependency's output longer than 64 KiB: `context` has its head, this file the whole text.
            "context_files": request.context_files,
        }
        return Invocation(
            argv=argv,
            stdin=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            env={"PCOORD_SESSION_ID": request.session_id, "PCOORD_TASK_ID": request.task_id},
            stream="command",
        )

    def interpret(self, agent: AgentSpec, outcome: AttemptOutcome) -> RunResult:
        if outcome.reason == "exited" and outcome.exit_code == 0:
            return RunResult(ok=True, output=outcome.stdout)
        return RunResult(ok=False, output=outcome.stdout, error=describe_exit(outcome))
