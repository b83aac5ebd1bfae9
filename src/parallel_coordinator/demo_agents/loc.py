"""Lines of code per language, by file extension: code, whole-line comment and blank lines."""

from __future__ import annotations

from dataclasses import dataclass

from parallel_coordinator.demo_agents._protocol import Request, md_table, plural, run, scan, target_dir

TITLE = "Lines of code"


@dataclass(frozen=True)
class Syntax:
    name: str
    line_comments: tuple[str, ...] = ()
    block: tuple[str, str] | None = None


_HASH = ("#",)
_C_BLOCK = ("/*", "*/")
_XML_BLOCK = ("<!--", "-->")
_LANGUAGES: list[tuple[Syntax, tuple[str, ...]]] = [
    (Syntax("Python", _HASH), (".py", ".pyi", ".pyw")),
    (Syntax("JavaScript", ("//",), _C_BLOCK), (".js", ".mjs", ".cjs", ".jsx")),
    (Syntax("TypeScript", ("//",), _C_BLOCK), (".ts", ".tsx", ".mts", ".cts")),
    (Syntax("Go", ("//",), _C_BLOCK), (".go",)),
    (Syntax("Rust", ("//",), _C_BLOCK), (".rs",)),
    (Syntax("C", ("//",), _C_BLOCK), (".c", ".h")),
    (Syntax("C++", ("//",), _C_BLOCK), (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx")),
    (Syntax("C#", ("//",), _C_BLOCK), (".cs",)),
    (Syntax("Java", ("//",), _C_BLOCK), (".java",)),
    (Syntax("Kotlin", ("//",), _C_BLOCK), (".kt", ".kts")),
    (Syntax("Swift", ("//",), _C_BLOCK), (".swift",)),
    (Syntax("Scala", ("//",), _C_BLOCK), (".scala",)),
    (Syntax("PHP", ("//", "#"), _C_BLOCK), (".php",)),
    (Syntax("Ruby", _HASH), (".rb",)),
    (Syntax("Perl", _HASH), (".pl", ".pm")),
    (Syntax("Lua", ("--",)), (".lua",)),
    (Syntax("Shell", _HASH), (".sh", ".bash", ".zsh", ".fish")),
    (Syntax("SQL", ("--",), _C_BLOCK), (".sql",)),
    (Syntax("HTML", (), _XML_BLOCK), (".html", ".htm")),
    (Syntax("XML", (), _XML_BLOCK), (".xml", ".svg")),
    (Syntax("CSS", (), _C_BLOCK), (".css", ".scss", ".less")),
    (Syntax("Markdown", (), _XML_BLOCK), (".md", ".markdown")),
    (Syntax("reStructuredText"), (".rst",)),
    (Syntax("YAML", _HASH), (".yml", ".yaml")),
    (Syntax("TOML", _HASH), (".toml",)),
    (Syntax("INI", ("#", ";")), (".ini", ".cfg")),
    (Syntax("JSON"), (".json",)),
    (Syntax("Text"), (".txt",)),
]
BY_SUFFIX = {suffix: syntax for syntax, suffixes in _LANGUAGES for suffix in suffixes}
BY_NAME = {
    "makefile": Syntax("Makefile", _HASH),
    "dockerfile": Syntax("Dockerfile", _HASH),
    "cmakelists.txt": Syntax("CMake", _HASH),
}


@dataclass
class Tally:
    files: int = 0
    code: int = 0
    comment: int = 0
    blank: int = 0

    @property
    def total(self) -> int:
        return self.code + self.comment + self.blank


def count_lines(lines: list[str], syntax: Syntax, tally: Tally) -> None:
    """Add one file to `tally`. Only comments that start a line count as comments: cheap, and a
    comment opener inside a string literal cannot swallow the code after it."""
    opener, closer = syntax.block or ("", "")
    in_block = False
    for raw in lines:
        line = raw.strip()
        if not line:
            tally.blank += 1
        elif in_block:
            tally.comment += 1
            in_block = closer not in line
        elif line.startswith(syntax.line_comments):
            tally.comment += 1
        elif opener and line.startswith(opener):
            tally.comment += 1
            in_block = closer not in line[len(opener) :]
        else:
            tally.code += 1
    tally.files += 1


def _row(name: str, t: Tally) -> list[object]:
    return [name, t.files, f"{t.code:,}", f"{t.comment:,}", f"{t.blank:,}", f"{t.total:,}"]


def analyse(request: Request) -> str:
    tallies: dict[str, Tally] = {}
    other = 0
    for source in scan(target_dir(request)):
        syntax = BY_NAME.get(source.path.name.lower()) or BY_SUFFIX.get(source.path.suffix.lower())
        if syntax is None:
            other += 1
            continue
        count_lines(source.lines(), syntax, tallies.setdefault(syntax.name, Tally()))

    total = Tally()
    for tally in tallies.values():
        total.files += tally.files
        total.code += tally.code
        total.comment += tally.comment
        total.blank += tally.blank
    skipped = f"; {plural(other, 'other text file')} not counted" if other else ""
    if not tallies:
        return f"## {TITLE}\n\nNo source files in a known language{skipped}."

    ranked = sorted(tallies.items(), key=lambda item: (-item[1].code, item[0]))
    rows = [_row(name, tally) for name, tally in ranked]
    rows.append(_row("**Total**", total))
    summary = (
        f"{plural(total.code, 'line')} of code in {plural(total.files, 'file')} across "
        f"{plural(len(tallies), 'language')}, plus {total.comment:,} comment and {total.blank:,} blank "
        f"lines{skipped}. Largest: {ranked[0][0]} ({ranked[0][1].code:,} lines of code)."
    )
    table = md_table(["Language", "Files", "Code", "Comment", "Blank", "Total"], rows, right=range(1, 6))
    return f"## {TITLE}\n\n{summary}\n\n{table}"


if __name__ == "__main__":
    run(analyse)
