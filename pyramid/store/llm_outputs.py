"""The LLM outputs cache (``llm_outputs``) and the token ledger (``distill_usage``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from .rows import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def outputs_of(conn: AsyncConnection, source: str) -> dict[str, dict[str, Any]]:
    """Every cached output made for one document, by key."""
    rows = await fetch_all(conn, query("distill.cached_outputs"), {"source": source})
    return {row["key"]: row["output"] for row in rows}


async def output(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = await fetch_one(conn, query("distill.cached_output"), {"key": key})
    return row["output"] if row else None


async def put_output(
    conn: AsyncConnection,
    *,
    key: str,
    step: str,
    model: str,
    source: str | None,
    position: int | None,
    pages_key: str | None,
    output: dict[str, Any],
    usage: dict[str, Any],
) -> None:
    from psycopg.types.json import Jsonb

    params = {
        "key": key,
        "step": step,
        "model": model,
        "source": source,
        "position": position,
        "pages_key": pages_key,
        "output": Jsonb(output),
        "usage": Jsonb(usage),
    }
    await conn.execute(query("distill.cache_output"), params)


async def forget_unused(conn: AsyncConnection, sources: Sequence[str], keep: Sequence[str]) -> None:
    """Drop the cached outputs of these documents except the ``keep`` keys."""
    await conn.execute(query("distill.forget_unused_outputs"), {"sources": list(sources), "keep": list(keep)})


async def record_usage(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows (source, step, model, requests, input_tokens, output_tokens, cached, failed) to
    the ledger."""
    async with conn.cursor() as cur:
        await cur.executemany(query("distill.record_usage"), list(rows))
