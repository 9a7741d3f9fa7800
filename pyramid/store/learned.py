"""The SQL of learned recollections: matching a finding to the one it repeats, writing it with its
provenance (each cited item and that item's document), the verdicts of ``recollections verify``, and
the listing with audit trails. Queries are in ``sql/queries/learned.sql``; rows come back by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from .rows import Row, fetch_all
from .schema import LOCK_COLLECTION_BASE, LOCK_LEARN

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def _rows(conn: AsyncConnection[Any], name: str, params: dict[str, Any]) -> list[Row]:
    return await fetch_all(conn, query(name), params)


def _json(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


async def lock(conn: AsyncConnection[Any]) -> None:
    """One learned finding is matched and written at a time (until the transaction ends), so two
    answers of the same finding never both insert it."""
    # Per collection: the key is the collection the session writes to.
    await _rows(conn, "learned.lock", {"namespace": LOCK_COLLECTION_BASE + LOCK_LEARN[1]})


async def cited_items(conn: AsyncConnection[Any], ids: Sequence[int]) -> dict[int, Row]:
    return {row["id"]: row for row in await _rows(conn, "learned.cited_items", {"ids": list(ids)})}


async def same_finding(conn: AsyncConnection[Any], key: str, embedding: Any, threshold: float) -> Row | None:
    rows = await _rows(
        conn, "learned.same_finding", {"key": key, "embedding": embedding, "threshold": threshold}
    )
    return rows[0] if rows else None


async def insert(
    conn: AsyncConnection[Any], item: int, *, key: str, question: str, model: str, cited: list[Row]
) -> None:
    await _rows(
        conn,
        "learned.insert",
        {"item": item, "key": key, "question": question, "model": model, "cited": _json(cited)},
    )
    await _write_sources(conn, item, cited)


async def _write_sources(conn: AsyncConnection[Any], item: int, cited: list[Row]) -> None:
    await _rows(
        conn,
        "learned.insert_sources",
        {
            "item": item,
            "items": [c["item"] for c in cited],
            "documents": [c["document_id"] for c in cited],
            "refs": [c["ref"] for c in cited],
        },
    )


async def revise(
    conn: AsyncConnection[Any],
    item: int,
    *,
    text: str,
    embedding: Any,
    content_hash: str,
    key: str,
    question: str,
    model: str,
    cited: list[Row],
    status: str,
    entry: Row,
) -> None:
    """Give a learned recollection a new text and sources; ``entry`` (the old version) goes on its
    history."""
    await _rows(
        conn,
        "learned.rewrite_item",
        {"item": item, "text": text, "embedding": embedding, "hash": content_hash},
    )
    await _rows(conn, "learned.delete_sources", {"item": item})
    await _write_sources(conn, item, cited)
    await _rows(
        conn,
        "learned.revise",
        {
            "item": item,
            "key": key,
            "question": question,
            "model": model,
            "cited": _json(cited),
            "status": status,
            "entry": _json([entry]),
        },
    )


async def judge(
    conn: AsyncConnection[Any], item: int, *, status: str, cited: list[Row], entry: Row, fresh: bool
) -> None:
    """Record a verdict; ``fresh``: the recollection is no longer stale (its sources were checked)."""
    if fresh:
        await _rows(conn, "learned.delete_sources", {"item": item})
        await _write_sources(conn, item, cited)
        await _rows(conn, "learned.unstale", {"item": item})
    await _rows(
        conn,
        "learned.judge",
        {"item": item, "status": status, "cited": _json(cited), "entry": _json([entry])},
    )


async def to_verify(conn: AsyncConnection[Any], *, every: bool) -> list[Row]:
    """The learned recollections to re-check: the stale ones, or (``every``) all but the retired."""
    return await _rows(conn, "learned.to_verify", {"every": every})


async def same_text_in(
    conn: AsyncConnection[Any], *, source: str, level: str, content_hash: str
) -> Row | None:
    rows = await _rows(conn, "learned.same_text_in", {"source": source, "level": level, "hash": content_hash})
    return rows[0] if rows else None


async def listing(
    conn: AsyncConnection[Any],
    *,
    item: int | None = None,
    kinds: Sequence[str] | None = None,
    stale: bool = False,
    retired: bool = False,
) -> list[Row]:
    return await _rows(
        conn,
        "learned.list",
        {"id": item, "kinds": list(kinds) if kinds else None, "stale": stale, "retired": retired},
    )


async def sources(conn: AsyncConnection[Any], ids: Sequence[int]) -> dict[int, list[Row]]:
    found: dict[int, list[Row]] = {}
    for row in await _rows(conn, "learned.sources", {"ids": list(ids)}):
        found.setdefault(row["recollection"], []).append(row)
    return found


async def current_on_pages(
    conn: AsyncConnection[Any], *, source: str, level: str, pages: Sequence[int], limit: int
) -> list[Row]:
    return await _rows(
        conn,
        "learned.current_on_pages",
        {"source": source, "level": level, "pages": list(pages), "limit": limit},
    )
