"""A writer process of the concurrency test: replaces, deletes and trims documents through the
library's write path, many small transactions, while other writers and a compactor run."""

from __future__ import annotations

import asyncio
import random
import sys

import psycopg
from pgvector.psycopg import register_vector_async
from search_helpers import record, sentence


async def write(dsn: str, seed: int, rounds: int) -> None:
    from pyramid.store import NewItem, delete_documents, delete_items, replace_document

    rng = random.Random(seed)
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await register_vector_async(conn)
    own = [f"/w{seed}/{i}.md" for i in range(6)]
    shared = [f"/shared/{i}.md" for i in range(3)]
    for _ in range(rounds):
        action = rng.random()
        async with conn.transaction():
            if action < 0.6:
                source = rng.choice(own + shared)
                items = [
                    NewItem(
                        key=str(i),
                        level=rng.choice(["page", "insight"]),
                        text=sentence(rng, rng.randint(0, 40)),
                    )
                    for i in range(rng.randint(1, 12))
                ]
                await replace_document(conn, record(source), items)
            elif action < 0.8:
                cur = await conn.execute("SELECT id FROM documents WHERE source = ANY(%s)", (own,))
                ids = [row[0] for row in await cur.fetchall()]
                if ids:
                    await delete_items(conn, rng.choice(ids), [rng.choice(["page", "insight"])])
            else:
                cur = await conn.execute("SELECT id FROM documents WHERE source = %s", (rng.choice(own),))
                ids = [row[0] for row in await cur.fetchall()]
                await delete_documents(conn, ids)
    await conn.close()


async def compact(dsn: str) -> None:
    """Compact until stopped (the test terminates this process, possibly mid-compaction); prints a
    line for each compaction that folded something."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    while True:
        cur = await conn.execute("SELECT folded FROM pyramid_bm25_compact()")
        (folded,) = await cur.fetchone()  # type: ignore[misc]
        if folded:
            print(folded, flush=True)
        await asyncio.sleep(0.02)


if __name__ == "__main__":
    dsn, role = sys.argv[1], sys.argv[2]
    if role == "compact":
        asyncio.run(compact(dsn))
    else:
        asyncio.run(write(dsn, int(sys.argv[3]), 40))
