"""Re-embed every item with another embedding model (the fix the embedding-mismatch error names),
and embed the items stored without a vector (:func:`embed_pending`).

Runs in one transaction: the vector column is retyped to the new dimension, every item is encoded
again from the text the store embeds it as (:func:`pyramid.store.embedded_text`: the same text a
fresh ingest embeds), the vector indexes are rebuilt with their own definitions, and the new model
is recorded. A crash leaves the old embeddings and the old model in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .faults import checkpoint
from .runtime import ProgressEvent, Runtime
from .store import maintenance

if TYPE_CHECKING:
    from .store.database import BuildInfo

BATCH = 256


async def reembed(rt: Runtime) -> int:
    db = rt.db
    dim = await _dimension(rt)
    async with db.connection() as conn, conn.transaction():
        indexes = await maintenance.drop_embedding_indexes(conn)
        await maintenance.retype_embeddings(conn, dim)
        rt.emit(ProgressEvent("start", total=await maintenance.count_items(conn)))
        done = 0
        async for rows in maintenance.items_to_embed(conn, BATCH):
            vectors = await rt.embedder.aencode_documents([text for _, text in rows])
            await maintenance.set_embeddings(conn, [item_id for item_id, _ in rows], vectors)
            done += len(rows)
            rt.emit(ProgressEvent("done", files_done=done))
        await maintenance.create_indexes(conn, indexes)
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


async def embed_pending(rt: Runtime, *, batch: int = BATCH, once: bool = False) -> int:
    """Embed the items of the collection written to that were stored without a vector (by workers
    that leave embedding to others: ``pyramid worker --stages convert,distill``), ``batch`` at a
    time. Each batch is claimed with ``FOR UPDATE SKIP LOCKED``, encoded and updated in one
    transaction: any number of processes share the backlog, and a killed one's batch is rolled
    back and free for the others at once (no lease to wait for). ``once``: one batch at most.
    Returns how many items were embedded."""
    done = 0
    while True:
        async with rt.db.connection() as conn, conn.transaction():
            rows = await maintenance.claim_unembedded(conn, batch)
            if not rows:
                return done
            checkpoint("embed.claimed")
            vectors = await rt.embedder.aencode_documents([text for _, text in rows])
            await maintenance.set_embeddings(conn, [item_id for item_id, _ in rows], vectors)
            checkpoint("embed.before-commit")
        done += len(rows)
        if once:
            return done


async def _dimension(rt: Runtime) -> int:
    import asyncio

    return int(await asyncio.to_thread(lambda: rt.embedder.dimension))


async def _reload_build(rt: Runtime) -> BuildInfo:
    async with rt.db.connection() as conn:
        return await rt.db.read_build(conn)
