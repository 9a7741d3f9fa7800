"""Work on the whole items table: re-embedding with another model (vector column retyped, vector
indexes dropped and rebuilt from their own definitions), and the sample the encoder probe compares
(:mod:`pyramid.encoder_check`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from . import embedded_text
from .rows import fetch_all, fetch_one

if TYPE_CHECKING:
    import numpy as np
    from psycopg import AsyncConnection


async def drop_embedding_indexes(conn: AsyncConnection) -> list[str]:
    """Drop the indexes on items.embedding; returns their definitions, to build them again."""
    from psycopg import sql

    indexes = await fetch_all(conn, query("maintenance.embedding_indexes"))
    for index in indexes:
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index["indexname"])))
    return [index["indexdef"] for index in indexes]


async def create_indexes(conn: AsyncConnection, definitions: Sequence[str]) -> None:
    for definition in definitions:
        await conn.execute(definition)


async def retype_embeddings(conn: AsyncConnection, dim: int) -> None:
    """Make items.embedding a vector of ``dim`` dimensions, every vector NULL."""
    from psycopg import sql

    await conn.execute(
        sql.SQL("ALTER TABLE items ALTER COLUMN embedding TYPE vector({}) USING NULL").format(
            sql.Literal(dim)
        )
    )


async def count_items(conn: AsyncConnection) -> int:
    row = await fetch_one(conn, query("maintenance.count_items"))
    return int(row["total"]) if row else 0


async def items_to_embed(conn: AsyncConnection, batch: int) -> AsyncIterator[list[tuple[int, str]]]:
    """Every item in id order, ``batch`` at a time, as (id, the text it is embedded as)."""
    last_id = 0
    while True:
        rows = await fetch_all(conn, query("maintenance.items_after"), {"after": last_id, "limit": batch})
        if not rows:
            return
        yield [(row["id"], embedded_text(row["level"], row["title"], row["text"])) for row in rows]
        last_id = rows[-1]["id"]


async def claim_unembedded(conn: AsyncConnection, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` items of the collection written to that have no vector yet, as (id, the text
    it is embedded as), row-locked until ``conn``'s transaction ends (others skip them)."""
    rows = await fetch_all(conn, query("maintenance.claim_unembedded"), {"limit": limit})
    return [(row["id"], embedded_text(row["level"], row["title"], row["text"])) for row in rows]


async def count_unembedded(conn: AsyncConnection) -> int:
    """Items in scope stored without a vector (waiting for an embedding worker)."""
    row = await fetch_one(conn, query("maintenance.count_unembedded"))
    return int(row["total"]) if row else 0


async def set_embeddings(conn: AsyncConnection, ids: Sequence[int], vectors: np.ndarray) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            query("maintenance.set_embedding"),
            [{"id": item_id, "embedding": vec} for item_id, vec in zip(ids, vectors, strict=True)],
        )


async def embedding_probes(conn: AsyncConnection) -> dict[str, Any]:
    """The encoder probes recorded in pyramid_meta (empty when none)."""
    row = await fetch_one(conn, query("maintenance.embedding_probes"))
    return dict(row["value"]) if row and row["value"] else {}


async def probe_sample(conn: AsyncConnection, limit: int) -> tuple[list[str], np.ndarray]:
    """A fixed, spread-out sample of stored pages and insights: their texts and stored vectors (one
    row each, float32); empty when nothing is embedded yet."""
    import numpy as np

    rows = await fetch_all(conn, query("maintenance.probe_items"), {"limit": limit})
    if not rows:
        return [], np.empty((0, 0), dtype=np.float32)
    # pgvector hands back a Vector (or a numpy array, depending on how the type was registered).
    vectors = [row["embedding"] for row in rows]
    stored = [v.to_numpy() if hasattr(v, "to_numpy") else v for v in vectors]
    return [row["text"] for row in rows], np.asarray(stored, dtype=np.float32)
