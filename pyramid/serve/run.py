"""Running the app with uvicorn, and the rule on where it may listen."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..api import Pyramid


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_bind(host: str, token: str | None, api_tokens: bool = False) -> None:
    """Without a token, anyone who can reach the port can read every document: refuse any address
    but loopback."""
    if not token and not api_tokens and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host!r} without a token: anyone who reaches it could read the "
            "pyramid. Set --token (or PYRAMID_API_TOKEN), or --api-tokens, or listen on 127.0.0.1"
        )


def serve(
    open_pyramid: Callable[[], Awaitable[Pyramid]],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    max_upload: int | None = None,
    upload_dir: Path | None = None,
    log_level: str = "info",
    api_tokens: bool = False,
) -> None:
    """Serve until interrupted (what ``pyramid serve`` runs)."""
    import uvicorn

    from .app import create_app
    from .common import DEFAULT_MAX_UPLOAD

    check_bind(host, token, api_tokens)
    app = create_app(
        open_pyramid=open_pyramid,
        api_tokens=api_tokens,
        token=token or None,
        max_upload=max_upload or DEFAULT_MAX_UPLOAD,
        upload_dir=upload_dir,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
