"""What the ingest pipeline and the distillers exchange, and what every distiller shares: the usage
meter and its ledger, carrying unchanged items over from the stored version, and embedding the
items that are new.

Kept free of heavy imports: the ingest pipeline imports it for the types.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..faults import checkpoint
from ..models import DocumentStatus, Usage
from ..store import NewItem, StoredFileState
from ..store.corpus import CorpusConcept

if TYPE_CHECKING:
    import numpy as np

    from ..convert import ConvertedDocument
    from ..runtime import Runtime

Step = str  # "insights", "concepts", "abstract", "recollections" (the ledger's step names)


@dataclass
class PreparedDocument:
    """A converted document with its embedded pages, ready for distillation and storage."""

    converted: ConvertedDocument
    file_sha256: str
    file_size: int
    file_mtime: float
    pages: list[NewItem]
    stored: StoredFileState | None  # the version stored before this run, if any
    # Set when the page vectors are in: the pipeline hands a document to its distiller while its
    # pages are still being encoded (a distiller needs their text only).
    pages_ready: asyncio.Future[None] | None = None

    async def wait_pages(self) -> None:
        if self.pages_ready is not None:
            await asyncio.shield(self.pages_ready)

    @property
    def title(self) -> str:
        return self.converted.title

    @property
    def source(self) -> str:
        return self.converted.source


@dataclass
class Distilled:
    """A document's levels above pages. Items that have no vector yet are embedded by the
    pipeline's writer, after the distiller has let go of its LLM slot (with the text the store
    says an item is embedded as: :func:`pyramid.store.embedded_text`)."""

    items: list[NewItem]
    distiller: str
    usage: Usage = field(default_factory=Usage)
    status: DocumentStatus = "ready"
    # What failed on the way ("partial" status): windows whose model calls failed, steps done by
    # the extractive method instead. The document is stored with what worked.
    failures: list[str] = field(default_factory=list)


class Distiller(Protocol):
    """Builds the levels above pages for one document, and the corpus level after a batch."""

    name: str

    async def distill(self, rt: Runtime, doc: PreparedDocument) -> Distilled: ...

    async def finish(self, rt: Runtime, document_ids: Sequence[int]) -> Usage: ...

    def estimate(self, pages: Sequence[str], *, title: str = "") -> Usage:
        """The tokens distilling these pages would take (zero without an LLM); for ``--dry-run``."""
        ...

    def price(self, usage: Usage) -> float | None:
        """USD for ``usage``, or None when the model's price is not known."""
        ...


# --- usage ------------------------------------------------------------------------------------------


@dataclass
class UsageMeter:
    """Tokens spent per step for one document (or for the corpus step), and calls answered from
    the cache."""

    model: str
    steps: dict[Step, Usage] = field(default_factory=dict)
    cached: dict[Step, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, step: Step, usage: Usage) -> None:
        self.steps[step] = self.steps.get(step, Usage()) + usage

    def hit(self, step: Step) -> None:
        self.cached[step] += 1

    @property
    def total(self) -> Usage:
        return Usage.sum(self.steps.values())


async def record_usage(rt: Runtime, source: str | None, meter: UsageMeter, *, failed: bool = False) -> None:
    """Append the meter to the ledger (``pyramid stats`` reads it). Written outside the document's
    transaction on purpose: tokens are spent whether or not the version gets stored."""
    from ..store import llm_outputs

    rows = [
        {
            "source": source,
            "step": step,
            "model": meter.model,
            "requests": meter.steps.get(step, Usage()).requests,
            "input_tokens": meter.steps.get(step, Usage()).input_tokens,
            "output_tokens": meter.steps.get(step, Usage()).output_tokens,
            "cached": meter.cached.get(step, 0),
            "failed": failed,
        }
        for step in sorted(set(meter.steps) | {s for s, n in meter.cached.items() if n})
    ]
    if not rows:
        return
    async with rt.db.connection() as conn:
        await llm_outputs.record_usage(conn, rows)


# --- carrying unchanged items over --------------------------------------------------------------------


async def carry_over(rt: Runtime, doc: PreparedDocument, items: Sequence[NewItem]) -> int:
    """Keep (same id, no re-embedding) every derived item the stored version already has with the
    same level, text, title, distiller and sources. Sources are resolved bottom-up, so an insight is
    kept only while its pages are, and a concept only while its insights are; page *numbers* may
    differ (a page inserted earlier renumbers the rest) and are updated on the kept item. Returns
    the number kept. Items must come in dependency order (insights, concepts, abstract)."""
    from .. import store

    if doc.stored is None:
        return 0
    async with rt.db.connection() as conn:
        old = await store.document_items(conn, doc.stored.id, levels=["insight", "concept", "abstract"])
    if not old:
        return 0
    waiting: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for view in old:
        signature = (view.level, view.text, view.title, view.distiller, tuple(sorted(view.sources)))
        waiting[signature].append(view.id)
    ids: dict[str, int] = {page.key: page.existing_id for page in doc.pages if page.existing_id is not None}
    kept = 0
    for item in items:
        resolved = [ids.get(source) if isinstance(source, str) else source for source in item.sources]
        known = [source for source in resolved if source is not None]
        if len(known) < len(resolved) or item.source_documents:
            continue
        signature = (item.level, item.text, item.title, item.distiller, tuple(sorted(known)))
        candidates = waiting.get(signature)
        if candidates:
            item.existing_id = candidates.pop(0)
            item.embedding = None
            ids[item.key] = item.existing_id
            kept += 1
    return kept


class EmbedBatcher:
    """Coalesces the embedding requests of documents distilled concurrently into one encoder call.

    The encoder runs on one thread; while it encodes one batch, the requests that arrive wait and
    then go together. Measured on the bundled MiniLM with ~10 sentences per document, one call per
    document was half as fast as one call for many documents (fixed cost per call, and batches of
    similar length pad less after the encoder sorts them).
    """

    def __init__(self, rt: Runtime, *, max_texts: int = 512) -> None:
        self.rt = rt
        self.max_texts = max_texts
        self._pending: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((list(texts), future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
                count = 0
                while self._pending and (not batch or count + len(self._pending[0][0]) <= self.max_texts):
                    entry = self._pending.pop(0)
                    batch.append(entry)
                    count += len(entry[0])
                try:
                    vectors = await self.rt.embedder.aencode_documents(
                        [t for texts, _ in batch for t in texts]
                    )
                except BaseException as exc:  # every waiter gets the failure, nobody waits forever
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                offset = 0
                for texts, future in batch:
                    if not future.done():
                        future.set_result(vectors[offset : offset + len(texts)])
                    offset += len(texts)
        finally:
            self._draining = False


async def embed_new(
    encode: Callable[[Sequence[str]], Awaitable[np.ndarray]], items: Sequence[NewItem]
) -> None:
    """Embed, in one batch, every item that is neither kept nor embedded yet, each as the text the
    store embeds it as (a concept with its name)."""
    todo = [item for item in items if item.existing_id is None and item.embedding is None]
    if not todo:
        return
    vectors = await encode([item.embedded_text for item in todo])
    for item, vector in zip(todo, vectors, strict=True):
        item.embedding = vector


@dataclass
class NewRecollection:
    text: str
    concepts: list[CorpusConcept]  # what it rests on (its audit trail)
    meta: dict[str, object] = field(default_factory=dict)


async def write_recollections(
    rt: Runtime, distiller: str, fresh: Sequence[NewRecollection], *, remove: Sequence[int] = ()
) -> None:
    """In one transaction: replace the recollections ``remove`` with ``fresh`` (embedded here,
    numbered after the existing ones, linked to their concepts with a readable trail). A fresh one
    that says what one of ``remove`` says, on the same sources (by their trail), is that one kept:
    same id, linked to the concepts as stored now, no longer stale. Deleting and inserting it gave
    an unchanged recollection a new id at every re-ingest, so a saved ``[recollection 306]`` broke."""
    from .. import store
    from ..store import corpus

    async with rt.db.connection() as conn:
        trails = await corpus.recollection_trails(conn, remove) if remove else {}
    by_trail: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for item_id, trail in trails.items():
        by_trail.setdefault(trail, []).append(item_id)
    kept: list[tuple[int, NewRecollection]] = []
    new: list[NewRecollection] = []
    for r in fresh:
        same = by_trail.get((r.text.strip(), tuple(sorted(c.ref for c in r.concepts))))
        if same:
            kept.append((same.pop(0), r))
        else:
            new.append(r)
    kept_ids = {item_id for item_id, _ in kept}
    gone = [item_id for item_id in remove if item_id not in kept_ids]
    texts = [store.embedded_text("recollection", None, r.text.strip()) for r in new]
    vectors: np.ndarray | list[np.ndarray] = await rt.embedder.aencode_documents(texts) if new else []
    async with rt.db.connection() as conn, conn.transaction():
        if gone:
            await corpus.delete_items(conn, gone)
        for item_id, r in kept:
            await corpus.keep_recollection(conn, item_id, r.concepts)
        ordinal = await corpus.next_recollection_ordinal(conn)
        items = [
            NewItem(
                key=f"recollection:{n}",
                level="recollection",
                text=r.text.strip(),
                ordinal=ordinal + n,
                embedding=vector,
                distiller=distiller,
                meta={"documents": sorted({c.document_id for c in r.concepts}), **r.meta},
                sources=[c.id for c in r.concepts],
                source_refs={c.id: c.ref for c in r.concepts},
            )
            for n, (r, vector) in enumerate(zip(new, vectors, strict=True))
        ]
        await store.write_items(conn, None, items)
        checkpoint("recollections.before-commit")
