"""The corpus step of the LLM distiller: after a batch, recollections are added or revised from the
new documents' abstracts and concepts, shown with the nearest concepts of other documents and with
the recollections they concern (including stale ones, so a recollection whose source changed is
refreshed). Every recollection rests on concepts of at least two documents; its sources are those
concepts, with a readable trail (concept — document) that survives their deletion.

A failure here does not undo the batch: the documents are stored, the failure is reported as a
message, and the next run tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import DistillationError, ModelError
from ..models import Usage
from ..store import corpus
from ..store.corpus import CorpusConcept
from .base import NewRecollection, UsageMeter, record_usage, write_recollections
from .cache import OutputCache

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .llm import LLMDistiller

RELATED_PER_CONCEPT = 3
MAX_RELATED = 40
MAX_SHOWN_RECOLLECTIONS = 20


async def refresh_recollections(rt: Runtime, distiller: LLMDistiller, document_ids: Sequence[int]) -> Usage:
    meter = UsageMeter(distiller.name)
    cache = OutputCache(rt, None, distiller.name)
    ids = sorted(set(document_ids))
    size = rt.settings.recollection_batch
    try:
        for start in range(0, len(ids), size):
            await _batch(rt, distiller, ids[start : start + size], cache, meter)
    except ModelError as exc:
        await cache.flush()
        await record_usage(rt, None, meter, failed=True)
        # The documents stay 'distilled' (pending): the next run tries the corpus step again.
        raise DistillationError(f"the recollection step failed: {exc}", usage=meter.total) from exc
    await cache.flush()
    await record_usage(rt, None, meter)
    return meter.total


async def _batch(
    rt: Runtime, distiller: LLMDistiller, ids: list[int], cache: OutputCache, meter: UsageMeter
) -> None:
    from ..agents.recollections import RecollectionDeps, build_recollection_agent, recollection_prompt

    async with rt.db.connection() as conn:
        new = [concept for concept, _ in await corpus.concepts(conn, ids)]
        abstracts = await corpus.abstracts(conn, ids)
        nearest = await corpus.related_concepts(
            conn, [c.id for c in new], exclude=ids, per_concept=RELATED_PER_CONCEPT
        )
        related: dict[int, CorpusConcept] = {}
        for concept in new:  # the concepts' neighbours in order, until MAX_RELATED are known
            if len(related) >= MAX_RELATED:
                break
            for hit in nearest.get(concept.id, []):
                related.setdefault(hit.id, hit)
        shown = await corpus.recollections_about(
            conn, [c.id for c in new] + list(related), limit=MAX_SHOWN_RECOLLECTIONS
        )
    numbered = new + list(related.values())
    if len({c.document_id for c in numbered}) < 2:
        return  # nothing to connect yet: a corpus of one document
    by_number = dict(enumerate(numbered, start=1))
    documents = []
    for doc_id in ids:
        concepts = [(n, c.name, c.text) for n, c in by_number.items() if c.document_id == doc_id and c in new]
        if concepts or doc_id in abstracts:
            title = next((c.document for c in new if c.document_id == doc_id), str(doc_id))
            documents.append((title, abstracts.get(doc_id, ""), concepts))
    others: dict[str, list[tuple[int, str, str]]] = {}
    for n, c in by_number.items():
        if c not in new:
            others.setdefault(c.document, []).append((n, c.name, c.text))
    user = recollection_prompt(
        documents, list(others.items()), [(n, text) for n, (_, text) in enumerate(shown, 1)]
    )
    deps = RecollectionDeps(
        {n: c.document_id for n, c in by_number.items()}, frozenset(range(1, len(shown) + 1))
    )
    edits = await distiller.call(
        "recollections",
        build_recollection_agent,
        user,
        deps,
        cache=cache,
        meter=meter,
        what="recollections",
    )
    entries = [(r.text, r.concepts, None) for r in edits.add] + [
        (r.text, r.concepts, shown[r.number - 1][0]) for r in edits.revise
    ]
    if not entries:
        return
    made = [
        NewRecollection(text, [by_number[k] for k in sorted(set(numbers))], {"revises": old} if old else {})
        for text, numbers, old in entries
    ]
    await write_recollections(
        rt, distiller.name, made, remove=[old for _, _, old in entries if old is not None]
    )
