"""Streamable HTTP: the bearer token that guards it, and the optional Prometheus exposition.

Every request to /mcp (and /metrics) needs `Authorization: Bearer <token>`. The token is
PCOORD_TOKEN when set; otherwise one is generated on first start and kept, owner-only, in the
state directory. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from mcp.server.auth.provider import AccessToken

TOKEN_FILE = "http-token"
# Shorter tokens can be guessed; the same floor holds for PCOORD_TOKEN and each PCOORD_TOKENS entry.
MIN_TOKEN_CHARS = 16


class StaticTokenVerifier:
    """Accepts a fixed set of bearer tokens, each naming its principal (the client it belongs to)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]

    def principal(self, token: str) -> str | None:
        given = token.encode()
        found = None
        for name, known in self._tokens:  # every token is compared, so timing tells nothing
            if hmac.compare_digest(given, known):
                found = name
        return found

    def accepts(self, token: str) -> bool:
        return self.principal(token) is not None

    async def verify_token(self, token: str) -> AccessToken | None:
        name = self.principal(token)
        return AccessToken(token=token, client_id=name, scopes=[]) if name is not None else None


def parse_tokens(text: str) -> dict[str, str]:
    """PCOORD_TOKENS: `name=token` pairs separated by commas, one principal each."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, token = item.partition("=")
        if not sep or not name.strip() or len(token.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"PCOORD_TOKENS entry {name.strip()!r} must be name=token with a token of at least "
                f"{MIN_TOKEN_CHARS} characters"
            )
        tokens[name.strip()] = token.strip()
    return tokens


def resolve_token(state_dir: Path) -> tuple[str, bool]:
    """(token, whether it was just generated): PCOORD_TOKEN, else the stored one, else a new one.

    Raises ValueError for a PCOORD_TOKEN shorter than MIN_TOKEN_CHARS (the message never shows it).
    """
    configured = os.environ.get("PCOORD_TOKEN")
    if configured:
        if len(configured.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"PCOORD_TOKEN has {len(configured.strip())} characters; a bearer token needs at least "
                f"{MIN_TOKEN_CHARS}: set a longer one (`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` "
                "makes one), or unset it to have one generated"
            )
        return configured, False
    path = state_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Created owner-only from the first byte: never world-readable, not even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
