"""The ASGI app: FastAPI over one open ``Pyramid``; auth, error mapping, the API and the page."""

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
from . import auth
from .common import DEFAULT_MAX_UPLOAD, ServeConfig, error, pyramid_error, set_session

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
) -> FastAPI:
    """The app over ``kp`` (left open: the caller owns it), or over the pyramid ``open_pyramid()``
    opens at start-up and the app closes at shutdown (what ``pyramid serve`` does)."""
    if kp is None and open_pyramid is None:
        raise ValueError("create_app needs a Pyramid or a way to open one")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if kp is not None:
            app.state.kp = kp
            yield
            return
        assert open_pyramid is not None
        opened = await open_pyramid()
        app.state.kp = opened
        try:
            yield
        finally:
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
    if kp is not None:
        app.state.kp = kp
    _errors(app)
    if token:
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


def _guard(app: FastAPI, token: str) -> None:
    @app.middleware("http")
    async def require_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        given = request.query_params.get("token")
        if given is not None and request.method == "GET" and not path.startswith("/api/"):
            # A browser hands the token once; it becomes a cookie and leaves the address bar.
            if not auth.same(given, token):
                return RedirectResponse("/login?failed=1", status_code=303)
            response: Response = RedirectResponse(path, status_code=303)
            set_session(response, token)
            return response
        if path in auth.OPEN_PATHS or auth.authorized(request, token):
            return await call_next(request)
        if path.startswith("/api/") or path == "/openapi.json":
            return JSONResponse(
                {"error": "unauthorized", "detail": "this server needs Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
