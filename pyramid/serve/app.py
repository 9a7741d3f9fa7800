"""The ASGI app: FastAPI over one open ``Pyramid``; auth, error mapping, the API and the page.

Two kinds of token open it. The server's own (``--token``) sees what the server was opened with.
An API token of the database (``pyramid tokens create --collection X``) is a PostgreSQL role: its
requests run on a pyramid opened as that role on its collections (``Pyramid.ascoped``), so the
row-level security of the database decides what each request sees. When the database has API
tokens (or ``api_tokens=True``), every request needs one of the two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import PyramidError
from ..models import ApiToken
from . import auth
from .common import DEFAULT_MAX_UPLOAD, ServeConfig, error, pyramid_error, session_for, set_session

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from ..api import Pyramid


def create_app(
    kp: Pyramid | None = None,
    *,
    token: str | None = None,
    model: str | Model | None = None,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    upload_dir: Path | None = None,
    open_pyramid: Callable[[], Awaitable[Pyramid]] | None = None,
    api_tokens: bool = False,
) -> FastAPI:
    """The app over ``kp`` (left open: the caller owns it), or over the pyramid ``open_pyramid()``
    opens at start-up and the app closes at shutdown (what ``pyramid serve`` does)."""
    if kp is None and open_pyramid is None:
        raise ValueError("create_app needs a Pyramid or a way to open one")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = kp if kp is not None else await open_pyramid()  # type: ignore[misc]
        app.state.kp = opened
        app.state.guarded = bool(token) or api_tokens or bool(await opened.atokens())
        try:
            yield
        finally:
            for scoped in app.state.scoped.values():
                await scoped.aclose()
            app.state.scoped.clear()
            if kp is None:
                await opened.aclose()

    # FastAPI's own /docs page loads Swagger UI from a CDN; the machine may be offline, so that page is
    # off and /docs is a small page of ours that renders /openapi.json with the app's own script.
    app = FastAPI(
        title="knowledge-pyramid",
        version=__version__,
        description="Search, explore and ask a knowledge pyramid.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config = ServeConfig(token=token, model=model, max_upload=max_upload, upload_dir=upload_dir)
    app.state.scoped = {}  # API token id -> the pyramid its requests run on
    app.state.guarded = bool(token) or api_tokens
    if kp is not None:
        app.state.kp = kp
    _errors(app)
    _guard(app, token)

    from .routes import router
    from .web import router as web_router

    app.include_router(router)
    app.include_router(web_router)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(PyramidError)
    async def library_error(request: Request, exc: PyramidError) -> JSONResponse:
        return pyramid_error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return error(422, "invalid_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        names = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        response = error(exc.status_code, names.get(exc.status_code, "http_error"), exc.detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug: the client gets its kind, never a traceback (the server log has it).
        import logging

        logging.getLogger("pyramid.serve").exception("unexpected error on %s", request.url.path)
        return error(500, "internal", f"unexpected {type(exc).__name__}")


def _guard(app: FastAPI, token: str | None) -> None:
    import asyncio

    opening = asyncio.Lock()

    async def scoped(found: ApiToken) -> Pyramid:
        """The pyramid of an API token: opened once, as its role, on its collections."""
        async with opening:
            if found.id not in app.state.scoped:
                app.state.scoped[found.id] = await app.state.kp.ascoped(
                    collections=found.collections, role=found.role
                )
            return app.state.scoped[found.id]

    async def admitted(request: Request) -> bool | ApiToken:
        """True: the server's own token; an ApiToken: one of the database's; False: neither."""
        given = auth.bearer(request)
        cookie = request.cookies.get(auth.COOKIE)
        if token and (auth.same(given, token) or auth.same(cookie, auth.session_value(token))):
            return True
        kp: Pyramid = app.state.kp
        if given is not None and given.startswith(auth.API_TOKEN_PREFIX):
            found = await kp.afind_token(given)
            return found if found is not None else False
        if cookie is not None and "." in cookie:
            return await kp.atoken_session(cookie) or False
        return False

    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not app.state.guarded:
            return await call_next(request)
        path = request.url.path
        given = request.query_params.get("token")
        if given is not None and request.method == "GET" and not path.startswith("/api/"):
            # A browser hands the token once; it becomes a cookie and leaves the address bar.
            session = await session_for(app.state.kp, given, token)
            if session is None:
                return RedirectResponse("/login?failed=1", status_code=303)
            response: Response = RedirectResponse(path, status_code=303)
            set_session(response, session)
            return response
        if path in auth.OPEN_PATHS:
            return await call_next(request)
        who = await admitted(request)
        if isinstance(who, ApiToken):
            request.state.token = who
            request.state.kp = await scoped(who)
            return await call_next(request)
        if who:
            return await call_next(request)
        if path.startswith("/api/") or path == "/openapi.json":
            return JSONResponse(
                {"error": "unauthorized", "detail": "this server needs Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
