"""`pcoord completion bash|zsh`: the script completes commands, flags, files and the recent session ids.

The bash script is sourced into a real bash and its completion function called as bash calls it on TAB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import environment, pcoord
from tests.conftest import AgentFactory

BASH = shutil.which("bash")


def bash_completions(script: str, line: str, env: dict[str, str]) -> list[str]:
    """What TAB at the end of `line` offers, as bash's programmable completion would fill COMPREPLY."""
    words = line.split(" ")
    program = f"""
        source /dev/stdin <<'SCRIPT'
{script}
SCRIPT
        COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({" ".join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
        _shtab_pcoord pcoord {words[-1]!r} {words[-2]!r}
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    assert BASH is not None
    done = subprocess.run([BASH, "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.skipif(BASH is None, reason="no bash on PATH")
def test_the_bash_script_completes_commands_flags_and_the_recent_session_ids(
    tmp_path: Path, agents: AgentFactory
) -> None:
    env = environment(tmp_path, agents)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"task_description": "one", "subtasks": [
        {"id": "a", "description": "x", "agent_type": "echo"}]}))
    for _ in range(2):
        assert pcoord("run", str(plan), "--json", env=env).returncode == 0
    ids = pcoord("status", "--ids", env=env).stdout.split()
    assert len(ids) == 2
    script = pcoord("completion", "bash", env=env).stdout
    # The script calls `pcoord` at completion time: the one installed beside this interpreter.
    shell_env = {**os.environ, **env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert bash_completions(script, "pcoord ca", shell_env) == ["cancel"]
    assert bash_completions(script, "pcoord run --o", shell_env) == ["--output"]
    assert sorted(bash_completions(script, "pcoord cancel ", shell_env)) == sorted(ids)
    assert bash_completions(script, f"pcoord watch {ids[0][:6]}", shell_env) == [ids[0]]
    assert bash_completions(script, f"pcoord run {tmp_path}/pl", shell_env) == [str(plan)]


def test_the_zsh_script_defines_the_pcoord_completion_with_every_command_and_the_session_ids(
    tmp_path: Path, agents: AgentFactory
) -> None:
    script = pcoord("completion", "zsh", env=environment(tmp_path, agents)).stdout
    assert script.startswith("#compdef pcoord")
    for command in ("serve", "agents", "init", "run", "plan", "status", "watch", "cancel", "report", "gc"):
        assert f"    {command}:'" in script, command
    assert "$(pcoord status --ids 2>/dev/null)" in script


def test_an_unknown_shell_is_refused_naming_the_ones_there_are(tmp_path: Path, agents: AgentFactory) -> None:
    done = pcoord("completion", "fishy", env=environment(tmp_path, agents))
    assert done.returncode == 2
    assert "'fishy'" in done.stderr and "bash" in done.stderr and "zsh" in done.stderr
