"""User recollections (``remember``) and the numbers behind ``pyramid stats``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ConfigError
from .models import DocumentUsage, ItemView, Stats, StepUsage, Usage
from .sqlfiles import query
from .store import NewItem

if TYPE_CHECKING:
    from .runtime import Runtime

USER = "user"


async def remember(rt: Runtime, text: str, *, sources: Sequence[str | int] = ()) -> ItemView:
    """Store a recollection the user states, linked to the documents it is about (its audit trail).
    It is never replaced by a distiller; it goes stale when one of its documents changes or goes."""
    from . import store

    text = text.strip()
    if not text:
        raise ConfigError("a recollection needs some text")
    vector = (await rt.embedder.aencode_documents([store.embedded_text("recollection", None, text)]))[0]
    async with rt.db.connection() as conn, conn.transaction():
        ids = [await store.resolve_document(conn, ref) for ref in sources]
        cur = await conn.execute(query("distill.document_sources"), {"ids": ids})
        names = {doc_id: (source, title) for doc_id, source, title in await cur.fetchall()}
        cur = await conn.execute(query("distill.next_recollection_ordinal"))
        (ordinal,) = await cur.fetchone()  # type: ignore[misc]
        item = NewItem(
            key="recollection",
            level="recollection",
            text=text,
            ordinal=ordinal,
            embedding=vector,
            distiller=USER,
            source_documents=sorted(set(ids)),
            source_refs={doc_id: f"{names[doc_id][1]} ({names[doc_id][0]})" for doc_id in ids},
        )
        keys = await store.write_items(conn, None, [item])
    return ItemView(
        id=keys["recollection"], level="recollection", ordinal=ordinal, text=text, pages=[], distiller=USER
    )


async def stats(rt: Runtime) -> Stats:
    result = Stats()
    async with rt.db.connection() as conn:
        for level, count, stale in await (await conn.execute(query("stats.items_per_level"))).fetchall():
            result.items[level] = int(count)
            result.stale += int(stale) if level == "recollection" else 0
        for level, distiller, count in await (
            await conn.execute(query("stats.items_per_distiller"))
        ).fetchall():
            result.distillers.setdefault(level, {})[distiller or "?"] = int(count)
        for status, count in await (await conn.execute(query("stats.documents_per_status"))).fetchall():
            result.documents[status] = int(count)
        for step, model, req, inp, outp, cached in await (
            await conn.execute(query("stats.usage_per_step"))
        ).fetchall():
            result.steps.append(
                StepUsage(step=step, model=model, usage=_usage(req, inp, outp), cached=int(cached))
            )
        by_source: dict[str, DocumentUsage] = {}
        rows = await (await conn.execute(query("stats.usage_per_document"))).fetchall()
        for source, doc_id, title, step, req, inp, outp, cached, failed in rows:
            doc = by_source.setdefault(source, DocumentUsage(source=source, document_id=doc_id, title=title))
            doc.steps.append(StepUsage(step=step, usage=_usage(req, inp, outp), cached=int(cached)))
            doc.failed = doc.failed or bool(failed)
        result.per_document = list(by_source.values())
        cur = await conn.execute(query("maintenance.embedding_probes"))
        probes = await cur.fetchone()
    build = rt.db.build
    assert build is not None
    result.encoder = {
        "model": build.embedding_model,
        "database": {"backend": build.embedding_backend, "precision": build.embedding_precision},
        "this_run": {"backend": rt.embedder.backend, "precision": rt.embedder.precision},
        "probes": dict(probes[0]) if probes else {},
    }
    return result


def _usage(requests: int, input_tokens: int, output_tokens: int) -> Usage:
    return Usage(requests=int(requests), input_tokens=int(input_tokens), output_tokens=int(output_tokens))
