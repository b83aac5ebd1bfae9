"""A task's output as the server keeps it: a bounded head in memory and SQLite, the whole text in a file.

An agent may print gigabytes. The server holds at most `INLINE_CHARS` of each output (what a tool
answer, a dependent's context or a summary needs); a longer output lives whole in a file under the
attempt's artefact directory, which `read_output` reads on demand. When the file itself was cut at the
disk cap, `cut` says so and `chars` is still the full length the agent wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parallel_coordinator.state.private_files import private_dir, write_private

# Bound on each output held in memory, in the store, and handed inline to a dependent.
INLINE_CHARS = 64 * 1024


@dataclass(frozen=True)
class KeptOutput:
    head: str  # the first INLINE_CHARS characters (all of it, when short)
    chars: int  # the whole output's length in characters
    path: str | None = None  # a file holding the whole text (up to the disk cap), when the head is not all
    cut: bool = False  # the file was cut at the disk cap: `chars` is more than it holds

    @property
    def complete(self) -> bool:
        return self.path is None and len(self.head) >= self.chars

    def identity(self) -> str:
        """Stands for the whole text in a cache key, without reading the file."""
        return self.head if self.complete else f"{self.head}\0{self.chars}\0{self.path}"


EMPTY = KeptOutput(head="", chars=0)


def keep_text(text: str, directory: Path) -> KeptOutput:
    """Keep an output held in memory: short, as it is; long, written whole to `directory/output`."""
    if len(text) <= INLINE_CHARS:
        return KeptOutput(head=text, chars=len(text))
    private_dir(directory)
    path = directory / "output"
    write_private(path, text.encode("utf-8", errors="replace"))
    return KeptOutput(head=text[:INLINE_CHARS], chars=len(text), path=str(path))


def keep_file(head: str, path: Path, chars: int, *, cut: bool) -> KeptOutput:
    """Keep an output whose whole text is already in a file (an agent's stdout artefact)."""
    return KeptOutput(head=head[:INLINE_CHARS], chars=chars, path=str(path), cut=cut)


def read_output(kept: KeptOutput, limit: int | None = None) -> str:
    """The first `limit` characters of the output (None: all that was kept), from the file past the head."""
    want = kept.chars if limit is None else min(limit, kept.chars)
    if want <= len(kept.head) or kept.path is None:
        return kept.head[:want]
    try:
        with open(kept.path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read(want)
    except OSError:
        return kept.head[:want]  # removed by retention, or on another machine: the head is what is left
