"""Who may see the dashboard: the same bearer tokens as /mcp, carried by a browser as a cookie.

A browser cannot send a header on a plain navigation, so `/dashboard?token=...` is accepted once and
answered with an HttpOnly, SameSite=Strict cookie and a redirect to the URL without the token. The
cookie holds the principal's name and an HMAC keyed by its token and a secret of this server process,
never the token: it proves nothing to another server, nor to this one once restarted. Every check is
constant-time. A request that changes something (cancel) must also carry a header no other site can
send without our consent (CORS), and an Origin, if any, of our own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

COOKIE = "pcoord_dashboard"
CHANGE_HEADER = "x-pcoord-dashboard"
_PURPOSE = b"parallel-coordinator dashboard cookie v1:"


class DashboardAuth:
    """The principals (name -> token) that may use the dashboard, and how a request proves it is one of them."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]
        self._process_secret = secrets.token_bytes(32)

    def _seal(self, name: str, token: bytes) -> str:
        key = self._process_secret + token
        return name + "." + hmac.new(key, _PURPOSE + name.encode(), hashlib.sha256).hexdigest()

    def by_token(self, given: str) -> str | None:
        """The principal whose token this is; every token is compared, so timing tells nothing."""
        found = None
        for name, token in self._tokens:
            if hmac.compare_digest(given.encode(), token):
                found = name
        return found

    def cookie_for(self, name: str) -> str:
        [token] = [token for known, token in self._tokens if known == name]
        return self._seal(name, token)

    def by_cookie(self, value: str) -> str | None:
        found = None
        for name, token in self._tokens:
            if hmac.compare_digest(value.encode(), self._seal(name, token).encode()):
                found = name
        return found

    def principal(self, request: Request) -> str | None:
        """The principal a request proves, by bearer header or cookie; None when it proves none."""
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return self.by_token(header[7:])
        cookie = request.cookies.get(cookie_name(request))
        return self.by_cookie(cookie) if cookie else None


def cookie_name(request: Request) -> str:
    """The cookie's name on this server: a browser keeps cookies per host, not per port, so two servers on one
    host (`pcoord dashboard` beside `pcoord serve --transport http`) would otherwise overwrite each other's."""
    port = request.url.port or {"http": 80, "https": 443}.get(request.url.scheme, 0)
    return f"{COOKIE}_{port}"


def same_origin_change(request: Request) -> bool:
    """A state-changing request from our own page: our header, and no foreign Origin or fetch site."""
    if request.headers.get(CHANGE_HEADER) != "cancel":
        return False
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"
