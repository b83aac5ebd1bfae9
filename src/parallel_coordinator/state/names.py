"""Names on disk for free text: task and session ids become directory names and git ref names."""

from __future__ import annotations

import hashlib
import re


def safe_name(name: str) -> str:
    """A path- and ref-safe form of `name`, unique per name: anything altered gets a short hash of the original.

    Only `[a-z0-9_-]` survive, so the result is safe on case-insensitive file systems and in ref names.
    """
    cleaned = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")[:40].strip("-_")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else f"x-{digest}"
