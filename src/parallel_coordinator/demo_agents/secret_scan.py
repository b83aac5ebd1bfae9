"""A scan for committed secrets: cloud keys, private keys, tokens and high-entropy `api_key = "..."`.

Findings carry file:line and a redacted excerpt; the secret itself is never printed.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass

from parallel_coordinator.demo_agents._protocol import Request, md_table, plural, run, scan, target_dir

TITLE = "Secret scan"
MAX_LISTED = 50
REDACTED = "[REDACTED]"
MIN_ENTROPY = 3.5  # bits per character; random keys sit well above, words and placeholders below


@dataclass(frozen=True)
class Rule:
    """`secret` is the named group to hide; `keep` leading characters of it are a public type
    marker (like `AKIA`), never key material."""

    kind: str
    pattern: re.Pattern[str]
    keep: int = 0
    high_entropy: bool = False


# Most specific first: where two rules match the same text, the earlier one reports it.
RULES = (
    Rule(
        "AWS access key id",
        re.compile(r"\b(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16})\b"),
        keep=4,
    ),
    Rule("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<secret>.*)")),
    Rule(
        "GitHub token",
        re.compile(r"\b(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{36,255})|github_pat_[A-Za-z0-9_]{22,255})\b"),
        keep=4,
    ),
    Rule("Slack token", re.compile(r"\b(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,})"), keep=5),
    Rule("Slack webhook", re.compile(r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9/_-]{20,})")),
    Rule("Stripe live key", re.compile(r"\b(?P<secret>[rs]k_live_[A-Za-z0-9]{20,})"), keep=8),
    Rule("Google API key", re.compile(r"\b(?P<secret>AIza[A-Za-z0-9_-]{35})"), keep=4),
    Rule(
        "hard-coded credential",
        re.compile(
            r"(?i)(?:api[_-]?key|secret|token|passw(?:or)?d|access[_-]?key|private[_-]?key)[\w.-]*"
            r"[\"']?\s*(?:[:=]{1,2}|=>)\s*(?P<q>[\"'])(?P<secret>[^\"'\s]{16,256})(?P=q)"
        ),
        high_entropy=True,
    ),
)
_PLACEHOLDER = re.compile(
    r"(?i)example|sample|placeholder|changeme|dummy|fake|test|your[_-]|xxxx|\$\{|\{\{|<|://"
)


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """High entropy, no placeholder words, and mixed character classes: an all-caps name such as
    `ANTHROPIC_API_KEY` is the name of a secret, not one."""
    classes = sum(any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit))
    return classes >= 2 and entropy(value) >= MIN_ENTROPY and _PLACEHOLDER.search(value) is None


@dataclass(frozen=True)
class Finding:
    line: int
    at: int  # where the match starts: a secret group may begin at the end of its line
    start: int  # offsets of the secret in the file's text
    end: int
    rule: Rule


def find_secrets(text: str) -> list[Finding]:
    """Every finding in `text`, one per secret, in file order."""
    candidates: list[tuple[int, int, int, int, Rule]] = []
    for order, rule in enumerate(RULES):
        for match in rule.pattern.finditer(text):
            secret = match.group("secret")
            if rule.high_entropy and not looks_random(secret):
                continue
            candidates.append((match.start("secret"), order, match.end("secret"), match.start(), rule))
    if not candidates:
        return []
    newlines = [match.start() for match in re.finditer("\n", text)]
    findings: list[Finding] = []
    covered = -1
    for start, _, end, at, rule in sorted(candidates, key=lambda c: (c[0], c[1])):
        if start < covered:
            continue  # the same text, already reported by a more specific rule
        findings.append(Finding(bisect_right(newlines, at) + 1, at, start, end, rule))
        covered = max(covered, end)
    return findings


def redacted_line(text: str, findings: list[Finding], at: int) -> str:
    """The line holding offset `at`, with every secret that touches it replaced (a secret may
    start on an earlier line), then shortened for the report."""
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", line_start)
    if line_end < 0:
        line_end = len(text)
    excerpt = text[line_start:line_end]
    for finding in sorted(findings, key=lambda f: -f.start):
        start, end = max(finding.start, line_start) - line_start, min(finding.end, line_end) - line_start
        if end > start:
            keep = finding.rule.keep if finding.start >= line_start else 0
            excerpt = excerpt[:start] + excerpt[start : start + keep] + REDACTED + excerpt[end:]
    excerpt = excerpt.strip()
    # shortened only after redaction, so a cut can never expose part of a secret
    return excerpt if len(excerpt) <= 120 else excerpt[:119] + "…"


def analyse(request: Request) -> str:
    rows: list[tuple[str, str, str]] = []
    kinds: Counter[str] = Counter()
    files = scanned = 0
    for source in scan(target_dir(request)):
        scanned += 1
        findings = find_secrets(source.text)
        files += bool(findings)
        for finding in findings:
            kinds[finding.rule.kind] += 1
            excerpt = redacted_line(source.text, findings, finding.at).replace("`", "'")
            rows.append((f"`{source.rel}:{finding.line}`", finding.rule.kind, f"`{excerpt}`"))

    if not rows:
        return f"## {TITLE}\n\nNo committed secrets found in {plural(scanned, 'file')}."
    per_kind = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
    summary = (
        f"{plural(len(rows), 'possible secret')} in {plural(files, 'file')}: {per_kind}. "
        "Rotate any real credential and remove it from the history."
    )
    listed = rows[:MAX_LISTED]
    table = md_table(["Location", "Kind", "Excerpt (redacted)"], listed)
    more = f"\n\n…and {len(rows) - len(listed):,} more." if len(rows) > len(listed) else ""
    return f"## {TITLE}\n\n{summary}\n\n{table}{more}"


if __name__ == "__main__":
    run(analyse)
