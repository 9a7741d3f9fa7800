"""One optional API token: ``Authorization: Bearer T`` for programs, an HttpOnly session cookie for a
browser that gave the token once (``/?token=T`` or the login form).

The cookie holds an HMAC of the token, not the token itself, so a cookie copied out of a browser is
not the key that programs use, and a server restarted with another token invalidates every session
without keeping any session table (the server keeps no state the database does not).
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

# The database's API tokens (pyramid tokens create) start with the prefix; only their hash is kept.
from ..store.tokens import PREFIX as API_TOKEN_PREFIX
from ..store.tokens import digest, parse_token_session, token_session

__all__ = ["API_TOKEN_PREFIX", "digest", "parse_token_session", "token_session"]

COOKIE = "pyramid_session"
# Paths a browser may reach without a session: the login form itself and its stylesheet.
OPEN_PATHS = frozenset({"/login", "/static/app.css"})


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"pyramid-serve-session", hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest), so the time taken says nothing about how much
    of a guessed token was right."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authorized(request: Request, token: str) -> bool:
    if same(bearer(request), token):
        return True
    return same(request.cookies.get(COOKIE), session_value(token))
