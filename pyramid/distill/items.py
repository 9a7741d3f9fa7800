"""The items a distiller makes of one document, with the keys that link them: insight ``n`` rests
on ``page:<p>``, concept ``n`` on ``insight:<i>``, the abstract on ``concept:<c>``. Both distillers
build their items here, so the provenance a store write resolves is spelled in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..store import NewItem

if TYPE_CHECKING:
    import numpy as np


def insight_item(
    number: int,
    text: str,
    pages: list[int],
    *,
    distiller: str,
    meta: dict[str, Any],
    embedding: np.ndarray | None = None,
) -> NewItem:
    """Insight ``number`` (1-based: its ordinal) of the document, built from its ``pages``."""
    return NewItem(
        key=f"insight:{number}",
        level="insight",
        text=text,
        ordinal=number,
        pages=pages,
        embedding=embedding,
        distiller=distiller,
        meta=meta,
        sources=[f"page:{page}" for page in pages],
    )


def concept_item(
    number: int, name: str, description: str, insights: Sequence[int], pages: list[int], *, distiller: str
) -> NewItem:
    """Concept ``number`` of the document, built from the insights numbered ``insights``."""
    return NewItem(
        key=f"concept:{number}",
        level="concept",
        title=name,
        text=description,
        ordinal=number,
        pages=pages,
        distiller=distiller,
        sources=[f"insight:{n}" for n in insights],
    )


def abstract_item(
    text: str,
    concepts: Sequence[int],
    pages: list[int],
    *,
    distiller: str,
    meta: dict[str, Any] | None = None,
) -> NewItem:
    """The document's abstract, built from the concepts numbered ``concepts``."""
    return NewItem(
        key="abstract",
        level="abstract",
        text=text,
        ordinal=1,
        pages=pages,
        distiller=distiller,
        meta=meta or {},
        sources=[f"concept:{n}" for n in concepts],
    )
