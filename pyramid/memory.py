"""User recollections (``remember``) and the numbers behind ``pyramid stats``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ConfigError
from .models import ItemView, Stats
from .store import NewItem

if TYPE_CHECKING:
    from .runtime import Runtime

USER = "user"


async def remember(rt: Runtime, text: str, *, sources: Sequence[str | int] = ()) -> ItemView:
    """Store a recollection the user states, linked to the documents it is about (its audit trail).
    It is never replaced by a distiller; it goes stale when one of its documents changes or goes."""
    from . import store
    from .store import corpus

    text = text.strip()
    if not text:
        raise ConfigError("a recollection needs some text")
    vector = (await rt.embedder.aencode_documents([store.embedded_text("recollection", None, text)]))[0]
    async with rt.db.connection() as conn, conn.transaction():
        # A feed file stands for every item it produced.
        ids = [doc_id for ref in sources for doc_id in await store.resolve_documents(conn, ref)]
        names = await corpus.document_names(conn, ids)
        ordinal = await corpus.next_recollection_ordinal(conn)
        item = NewItem(
            key="recollection",
            level="recollection",
            text=text,
            ordinal=ordinal,
            embedding=vector,
            distiller=USER,
            source_documents=sorted(set(ids)),
            source_refs={doc_id: f"{names[doc_id][1]} ({names[doc_id][0]})" for doc_id in set(ids)},
        )
        keys = await store.write_items(conn, None, [item])
    return ItemView(
        id=keys["recollection"], level="recollection", ordinal=ordinal, text=text, pages=[], distiller=USER
    )


async def stats(rt: Runtime) -> Stats:
    from .store.maintenance import embedding_probes
    from .store.stats import read_stats

    async with rt.db.connection() as conn:
        result = await read_stats(conn)
        probes = await embedding_probes(conn)
    build = rt.db.build
    assert build is not None
    result.encoder = {
        "model": build.embedding_model,
        "database": {"backend": build.embedding_backend, "precision": build.embedding_precision},
        "this_run": {"backend": rt.embedder.backend, "precision": rt.embedder.precision},
        "probes": probes,
    }
    return result
