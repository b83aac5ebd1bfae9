"""Quality checks on a task's result before it counts as succeeded (options.qa). Knows no MCP and no engine:
the engine runs the checks' processes (engine/quality.py). Its public surface is its modules:

    verdicts     a check's verdict, the built-in checks' names, the feedback a failure gives the retry
    changes      the files a task changed: its worktree's or the working directory's git changes
    builtin      the built-in checks as supervised commands, and their verdicts
    check_job    the process syntax_check and security_scan run in
    syntax       syntax_check's per-file checkers
    security     security_scan's scanners: the bundled secret scanner, bandit, semgrep
    agent_check  an agent named as a check: what it is handed, what it answers
    pipeline     one attempt's checks, run at once
"""

__all__ = [
    "agent_check",
    "builtin",
    "changes",
    "check_job",
    "pipeline",
    "security",
    "syntax",
    "verdicts",
]
