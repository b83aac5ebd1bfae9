"""An inventory of TODO, FIXME, XXX and HACK markers in comments, with file:line and their text."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from parallel_coordinator.demo_agents._protocol import Request, md_table, plural, run, scan, target_dir

TITLE = "TODO inventory"
TAGS = ("TODO", "FIXME", "XXX", "HACK")
MAX_LISTED = 50
_TAG = re.compile(r"\b(" + "|".join(TAGS) + r")\b")
# A tag counts only after a comment opener on its line, so one inside a string or an
# identifier is not an inventory item.
_COMMENT_OPENER = re.compile(r"#|//|/\*|<!--|^\s*\*|^\s*;|(?:^|\s)--")


@dataclass(frozen=True)
class Marker:
    location: str
    tag: str
    text: str


def find_markers(rel: str, lines: list[str]) -> list[Marker]:
    markers: list[Marker] = []
    for number, line in enumerate(lines, start=1):
        match = _TAG.search(line)
        if match is None or _COMMENT_OPENER.search(line, 0, match.start()) is None:
            continue
        text = line[match.end() :].strip().lstrip(":").strip()
        text = text.removesuffix("*/").removesuffix("-->").strip()
        if len(text) > 100:
            text = text[:99] + "…"
        markers.append(Marker(f"{rel}:{number}", match.group(1), text or "(no text)"))
    return markers


def analyse(request: Request) -> str:
    markers: list[Marker] = []
    files = scanned = 0
    for source in scan(target_dir(request)):
        scanned += 1
        if _TAG.search(source.text) is None:  # cheap gate before the per-line pass
            continue
        found = find_markers(source.rel, source.lines())
        files += bool(found)
        markers += found

    if not markers:
        return f"## {TITLE}\n\nNo {', '.join(TAGS)} markers in {plural(scanned, 'file')}."
    counts = Counter(marker.tag for marker in markers)
    per_tag = ", ".join(f"{counts[tag]} {tag}" for tag in TAGS if counts[tag])
    summary = f"{plural(len(markers), 'marker')} in {plural(files, 'file')}: {per_tag}."
    listed = markers[:MAX_LISTED]
    table = md_table(["Location", "Tag", "Text"], [[f"`{m.location}`", m.tag, m.text] for m in listed])
    more = f"\n\n…and {len(markers) - len(listed):,} more." if len(markers) > len(listed) else ""
    return f"## {TITLE}\n\n{summary}\n\n{table}{more}"


if __name__ == "__main__":
    run(analyse)
