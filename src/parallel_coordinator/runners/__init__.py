"""Runners turn an agent and a task into a process to start, and its outcome into a result.

Pool workers import `runners.streams`, so this package must stay import-light.

    base           the Runner protocol and the values that cross to pool workers
    command        the command agent protocol (CONTRACT.md)
    claude         headless Claude Code
    claude_lean    what a spawned claude agent loads: its MCP servers and setting sources only
    claude_stream  reading Claude Code's stream-json events
    codex          the OpenAI Codex CLI (`codex exec --json`)
    codex_stream   reading its JSONL events
    gemini         the Gemini CLI (`gemini -p -o stream-json`)
    gemini_stream  reading its stream-json events
    agent_clis     what the codex and gemini runners share
    stream_text    short progress text for their readers
    streams        the stream reader a supervisor uses, by kind
    progress       progress lines and the reader protocol
    models         the model table and the choice per run
"""

__all__ = [
    "agent_clis",
    "base",
    "claude",
    "claude_lean",
    "claude_stream",
    "codex",
    "codex_stream",
    "command",
    "gemini",
    "gemini_stream",
    "models",
    "progress",
    "stream_text",
    "streams",
]
