"""Re-embed every item with another embedding model: the fix the embedding-mismatch error names.

Runs in one transaction: the vector column is retyped to the new dimension, every item is encoded
again from the text the store embeds it as (:func:`pyramid.store.embedded_text`: the same text a
fresh ingest embeds), the vector indexes are rebuilt with their own definitions, and the new model is
recorded. A crash leaves the old embeddings and the old model in place.
"""

from __future__ import annotations

from .runtime import ProgressEvent, Runtime
from .sqlfiles import query
from .store import embedded_text

BATCH = 256


async def reembed(rt: Runtime) -> int:
    from psycopg import sql
    from psycopg.rows import dict_row

    db = rt.db
    dim = await _dimension(rt)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(query("maintenance.embedding_indexes"))
        indexes = [(name, definition) for name, definition in await cur.fetchall()]
        for name, _ in indexes:
            await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        await conn.execute(
            sql.SQL("ALTER TABLE items ALTER COLUMN embedding TYPE vector({}) USING NULL").format(
                sql.Literal(dim)
            )
        )
        cur = await conn.execute(query("maintenance.count_items"))
        (total,) = await cur.fetchone()  # type: ignore[misc]
        rt.emit(ProgressEvent("start", total=total))
        done = 0
        last_id = 0
        while True:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query("maintenance.items_after"), {"after": last_id, "limit": BATCH})
                rows = await cur.fetchall()
            if not rows:
                break
            texts = [embedded_text(row["level"], row["title"], row["text"]) for row in rows]
            vectors = await rt.embedder.aencode_documents(texts)
            async with conn.cursor() as upd:
                await upd.executemany(
                    query("maintenance.set_embedding"),
                    [{"id": row["id"], "embedding": vec} for row, vec in zip(rows, vectors, strict=True)],
                )
            done += len(rows)
            last_id = rows[-1]["id"]
            rt.emit(ProgressEvent("done", files_done=done))
        for _, definition in indexes:
            await conn.execute(definition)
        await db.write_meta(
            conn,
            embedding_model=rt.embedder.name,
            embedding_dim=dim,
            embedding_backend=rt.embedder.backend,
            embedding_precision=rt.embedder.precision,
            embedding_probes={},  # every vector is this encoder's now: earlier probes no longer apply
        )
    db.build = await _reload_build(rt)
    return done


async def _dimension(rt: Runtime) -> int:
    import asyncio

    return int(await asyncio.to_thread(lambda: rt.embedder.dimension))


async def _reload_build(rt: Runtime):  # type: ignore[no-untyped-def]
    async with rt.db.connection() as conn:
        return await rt.db.read_build(conn)
