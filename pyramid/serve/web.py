"""The web page, the login form, the offline API docs page and their static assets.

Server-rendered HTML plus one small vanilla script (``static/app.js``); no Node build, no CDN: every
asset is a file of this package.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .common import error, pyramid_of, session_for, set_session

router = APIRouter(include_in_schema=False)
_STATIC = files("pyramid.serve") / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(name: str, **values: str) -> HTMLResponse:
    html = (_STATIC / name).read_text(encoding="utf-8")
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", value)
    return HTMLResponse(html, headers=_SECURITY)


@router.get("/")
async def index(request: Request) -> Response:
    docs = await pyramid_of(request).adocuments()
    rows = "\n".join(
        f'<li><a href="#/doc/{doc.id}">{escape(doc.title or doc.path)}</a> '
        f'<span class="muted">{escape(doc.format)} · {doc.pages} p. · {escape(doc.status)}</span></li>'
        for doc in docs
    )
    return _page(
        "index.html", documents=rows or '<li class="muted">No documents yet.</li>', count=str(len(docs))
    )


@router.get("/docs")
async def api_docs() -> Response:
    return _page("docs.html")


@router.get("/login")
async def login_form(failed: int = 0, next: str = "/") -> Response:
    message = '<p class="bad" role="alert">That token is not right.</p>' if failed else ""
    return _page("login.html", message=message, next=escape(_local(next)))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    token = request.app.state.config.token
    given = str(form.get("token") or "")
    target = _local(str(form.get("next") or "/"))
    if not request.app.state.guarded:
        return RedirectResponse(target, status_code=303)
    session = await session_for(request.app.state.kp, given, token)
    if session is None:
        return RedirectResponse("/login?failed=1", status_code=303)
    response = RedirectResponse(target, status_code=303)
    set_session(response, session)
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    resource = _STATIC / name
    if "/" in name or suffix not in _TYPES or not resource.is_file():
        return error(404, "not_found", f"no static file {name!r}")
    return Response(resource.read_bytes(), media_type=_TYPES[suffix], headers={"Cache-Control": "no-cache"})


def _local(target: Any) -> str:
    """Only paths of this site after a login (an open redirect would hand the session elsewhere)."""
    target = str(target)
    return target if target.startswith("/") and not target.startswith("//") else "/"
