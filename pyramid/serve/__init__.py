"""``pyramid serve``: an HTTP API (JSON, OpenAPI) and a web page over the same ``Pyramid`` API the CLI
uses. The app holds no state the database does not: every request is one library call.

FastAPI, Starlette and uvicorn are imported here and below only; ``import pyramid.cli`` loads none of
them (the start-up test checks).
"""

from __future__ import annotations

from .app import create_app
from .run import check_bind, serve

__all__ = ["check_bind", "create_app", "serve"]
