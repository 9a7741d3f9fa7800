"""The reads of retrieval: hybrid search (``pyramid_search``), items as evidence, the walk from one
item to its neighbours, and the similarity of stored items to a query. The SQL is in
``sql/queries/search.sql`` and ``sql/queries/ask.sql``; every row comes back as a dict by column name,
so a column added to a query breaks nothing that reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SearchError
from ..sqlfiles import query
from .rows import Row, fetch_all

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def search(conn: AsyncConnection[Any], params: dict[str, Any]) -> list[Row]:
    """``pyramid_search`` joined to items and documents, best first: scores and ranks of each leg,
    the item, and its document's source, path and title. The function's own argument checks (there
    for its psql users) come back as a SearchError with its message."""
    import psycopg

    try:
        return await fetch_all(conn, query("search.run"), params)
    except psycopg.errors.InvalidParameterValue as exc:
        raise SearchError(str(exc.diag.message_primary or exc)) from None


async def compact(conn: AsyncConnection[Any], *, k1: float, b: float) -> tuple[int, list[str]]:
    [row] = await fetch_all(conn, query("search.compact"), {"k1": k1, "b": b})
    return int(row["folded"]), list(row["reimpacted"] or [])


async def items(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[Row]:
    """The items ``ids`` with their documents (ids that do not exist are left out)."""
    return await fetch_all(conn, query("ask.items"), {"ids": list(ids)})


async def expand(conn: AsyncConnection[Any], item_id: int, *, per_kind: int) -> list[Row]:
    """One item and its neighbours in one read, each row with its ``relation``: ``item`` (the item
    itself, its whole source documents in ``source_documents``), ``source``, ``derived`` or
    ``abstract``. Empty when there is no such item."""
    return await fetch_all(conn, query("ask.expand"), {"id": item_id, "per_kind": per_kind})


async def similarity(conn: AsyncConnection[Any], ids: Sequence[int], embedding: Any) -> dict[int, float]:
    """Cosine similarity of stored items to a query embedding (items without one score 0)."""
    rows = await fetch_all(conn, query("ask.similarity"), {"ids": list(ids), "embedding": embedding})
    return {row["id"]: float(row["similarity"] or 0.0) for row in rows}
