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


class StaticTokenVerifier:
    """Accepts exactly one bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def accepts(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._token)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not self.accepts(token):
            return None
        return AccessToken(token=token, client_id="pcoord", scopes=[])


def resolve_token(state_dir: Path) -> tuple[str, bool]:
    """(token, whether it was just generated): PCOORD_TOKEN, else the stored one, else a new one."""
    configured = os.environ.get("PCOORD_TOKEN")
    if configured:
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
