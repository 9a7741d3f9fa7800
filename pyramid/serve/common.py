"""What the app and its routers share: the serve configuration, the JSON error shape and the HTTP
status of each library error, and the session cookie."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..errors import (
    BusyError,
    ConfigError,
    ConversionError,
    DatabaseError,
    EmbeddingMismatchError,
    ModelError,
    NotFoundError,
    PyramidError,
    SearchError,
)
from . import auth

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from ..api import Pyramid

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024

# Each user-facing error of the library as an HTTP status and a short machine-readable name.
_STATUS: list[tuple[type[PyramidError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (SearchError, 400, "bad_request"),
    (ConfigError, 400, "bad_request"),
    (ConversionError, 422, "conversion_failed"),
    (BusyError, 409, "busy"),
    (EmbeddingMismatchError, 409, "embedding_mismatch"),
    (ModelError, 502, "model_failed"),
    (DatabaseError, 503, "database_unavailable"),
]


@dataclass
class ServeConfig:
    """What the app needs besides the pyramid: the token, the model ``ask`` uses (None: the pyramid's
    configured one), the upload cap and where uploads are kept."""

    token: str | None = None
    model: str | Model | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    upload_dir: Path | None = None


def error(status: int, name: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": name, "detail": detail}, status_code=status)


def pyramid_error(exc: PyramidError) -> JSONResponse:
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return error(status, name, str(exc))
    return error(500, "failed", str(exc))


def set_session(response: Response, session: str) -> None:
    """Set the session cookie (``session_for`` made its value)."""
    response.set_cookie(auth.COOKIE, session, httponly=True, samesite="strict", path="/")


def pyramid_of(request: Request) -> Pyramid:
    """The pyramid a request runs on: its API token's (as that token's role), else the server's."""
    return getattr(request.state, "kp", None) or request.app.state.kp


async def session_for(kp: Pyramid, given: str, token: str | None) -> str | None:
    """The session cookie's value for a token a browser gave (the server's own, or one of the
    database's API tokens), or None when it is neither."""
    if token and auth.same(given, token):
        return auth.session_value(token)
    if given.startswith(auth.API_TOKEN_PREFIX):
        found = await kp.afind_token(given)
        if found is not None:
            return auth.token_session(found.id, auth.digest(given))
    return None
