"""Split a Markdown agent file into front matter and body, and read the front matter leniently.

Strict YAML first; when it fails, a line-based reader that loads what Claude Code loads.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import Node

from parallel_coordinator.errors import AgentFileError

MAX_FRONT_MATTER_CHARS = 256 * 1024
MAX_FLOW_DEPTH = 64

# A top-level `key: value` line: the key runs to the first ':' followed by a blank or the line's end.
_KEY_LINE = re.compile(r"^(?P<key>[^\s#\-][^:]*?)[ \t]*:(?:[ \t]+(?P<value>.*?)|[ \t]*)$")
_DELIMITER = re.compile(r"^---[ \t]*$")
_BLOCK_SCALAR = re.compile(r"^[|>][+-]?[0-9]?[ \t]*$")
_BRACKETS = re.compile(r"[\[\]{}]")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, so a crafted file cannot expand into a billion nodes."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are refused in agent front matter",
                event.start_mark,
            )
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class FrontMatter:
    """The parsed front matter (`data`), the Markdown after it (`body`), and what had to be repaired."""

    data: dict[str, Any]
    body: str
    repairs: list[str] = field(default_factory=list)


def decode_agent_bytes(raw: bytes) -> tuple[str, list[str]]:
    """Decode a file's bytes as UTF-8; invalid bytes are replaced and reported, binary files refused."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise AgentFileError("the file is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in raw:
        raise AgentFileError(f"binary file (NUL byte at offset {raw.index(0)}), not Markdown")
    repairs: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Node, hence Claude Code, decodes UTF-8 with replacement: a stray Latin-1 byte is no reason to skip.
        text = raw.decode("utf-8", errors="replace")
        repairs.append(
            f"invalid UTF-8 at byte {exc.start} ({raw[exc.start : exc.start + 1]!r}); "
            "undecodable bytes were replaced with U+FFFD"
        )
    return text.removeprefix("\ufeff"), repairs


def split_front_matter(text: str) -> tuple[str, str]:
    """Return (front matter, body) of an agent file's text; raise AgentFileError when there is none."""
    lines = text.replace("\r\n", "\n").splitlines(keepends=True)
    if not lines or not _DELIMITER.match(lines[0].rstrip()):
        raise AgentFileError("no front matter: an agent file must start with a '---' line")
    size = 0
    for index, line in enumerate(lines[1:], start=1):
        if _DELIMITER.match(line.rstrip()):
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
        size += len(line)
        if size > MAX_FRONT_MATTER_CHARS:
            raise AgentFileError(
                f"front matter is larger than {MAX_FRONT_MATTER_CHARS // 1024} KiB "
                "(or its closing '---' line is missing)"
            )
    raise AgentFileError("front matter is never closed: add a '---' line after the last key")


def _yaml_gist(exc: BaseException) -> str:
    """One line saying what strict YAML disliked and where (line numbers count from the file's top)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, yaml.MarkedYAMLError):
        what = exc.problem or exc.context or type(exc).__name__
        mark = exc.problem_mark or exc.context_mark
        # +2: marks count from 0 and the front matter starts after the opening '---' line.
        where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark is not None else ""
        return f"{what}{where}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _flow_depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(text):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _strict_load(text: str) -> Any:
    # PyYAML's scanner is quadratic in flow nesting ("[[[[..."): refuse depths no agent file needs.
    if _flow_depth(text) > MAX_FLOW_DEPTH:
        raise ValueError(f"brackets nested more than {MAX_FLOW_DEPTH} deep")
    return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: no arbitrary objects


# ValueError: constructors choke on values such as an impossible date; RecursionError: deep nesting.
_STRICT_ERRORS = (yaml.YAMLError, ValueError, RecursionError, OverflowError)


def parse_front_matter(block: str) -> tuple[dict[str, Any], list[str]]:
    """Parse front matter into a dict, with notes on any repair; raise AgentFileError if nothing usable."""
    if len(block) > MAX_FRONT_MATTER_CHARS:
        raise AgentFileError(f"front matter is larger than {MAX_FRONT_MATTER_CHARS // 1024} KiB")
    if not block.strip():
        raise AgentFileError("empty front matter: add at least a 'name:' line")
    try:
        data = _strict_load(block)
    except _STRICT_ERRORS as exc:
        gist = _yaml_gist(exc)
    else:
        if data is None:
            raise AgentFileError("empty front matter: add at least a 'name:' line")
        if isinstance(data, dict):
            return {str(key): value for key, value in data.items()}, []
        kind = {"list": "a list", "str": "plain text"}.get(type(data).__name__, type(data).__name__)
        gist = f"YAML reads it as {kind}, not as keys and values"
    data = _read_lines(block)
    if not data:
        raise AgentFileError(f"front matter has no 'key: value' lines ({gist})")
    return data, [f"front matter is not strict YAML ({gist}); read line by line, as Claude Code loads it too"]


@dataclass
class _Entry:
    key: str
    value: str
    header: str
    lines: list[str] = field(default_factory=list)


def _read_lines(block: str) -> dict[str, Any]:
    """The lenient reader: top-level `key: value` lines, with indented lines belonging to the key above."""
    entries: list[_Entry] = []
    for line in block.split("\n"):
        top_level = bool(line) and line[0] not in " \t"
        if top_level and line.startswith("#"):
            continue
        match = _KEY_LINE.match(line) if top_level else None
        if match:
            entries.append(_Entry(match["key"], (match["value"] or "").strip(), line))
        elif entries:
            # Indented lines, and unindented non-key lines (`- item`, wrapped text), continue the value.
            entries[-1].lines.append(line)
    return {key: value for key, value in map(_entry_value, entries)}


def _entry_value(entry: _Entry) -> tuple[str, Any]:
    # Most entries in a broken block are fine on their own: keep YAML's reading of those.
    try:
        alone = _strict_load("\n".join([entry.header, *entry.lines]))
    except _STRICT_ERRORS:
        alone = None
    if isinstance(alone, dict) and len(alone) == 1:
        key, value = next(iter(alone.items()))
        return str(key), value
    return _unquote(entry.key), _lenient_value(entry)


def _lenient_value(entry: _Entry) -> Any:
    lines = [line for line in entry.lines if line.strip()]
    if _BLOCK_SCALAR.match(entry.value):
        body = textwrap.dedent("\n".join(entry.lines)).strip("\n")
        return body if entry.value.startswith("|") else " ".join(body.split("\n"))
    if not entry.value and lines and _is_item(lines[0]):
        items: list[str] = []
        for line in lines:
            if _is_item(line):
                items.append(line.strip()[1:].strip())
            else:
                items[-1] = f"{items[-1]} {line.strip()}".strip()
        return [_unquote(item) for item in items]
    return _unquote(" ".join([entry.value, *(line.strip() for line in lines)]).strip())


def _is_item(line: str) -> bool:
    stripped = line.strip()
    return stripped == "-" or stripped.startswith("- ")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        if value[0] == "'":
            return value[1:-1].replace("''", "'")
        try:
            unescaped = _strict_load(value)
        except _STRICT_ERRORS:
            unescaped = None
        return unescaped if isinstance(unescaped, str) else value[1:-1]
    return value


def read_front_matter(raw: bytes) -> FrontMatter:
    """Decode, split and parse one agent file's bytes; raise AgentFileError when it is not an agent file."""
    text, repairs = decode_agent_bytes(raw)
    block, body = split_front_matter(text)
    data, parse_repairs = parse_front_matter(block)
    return FrontMatter(data=data, body=body, repairs=[*repairs, *parse_repairs])
