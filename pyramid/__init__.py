"""knowledge-pyramid: agentic RAG over a knowledge pyramid stored in PostgreSQL/pgvector.

``from pyramid import Pyramid`` is cheap: the API module (and with it psycopg, torch, …) is only
imported when ``Pyramid`` is first touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import Pyramid

__all__ = ["Pyramid", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Pyramid":
        from .api import Pyramid

        return Pyramid
    raise AttributeError(f"module 'pyramid' has no attribute {name!r}")
