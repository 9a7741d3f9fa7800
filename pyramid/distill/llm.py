"""The LLM distiller: PydanticAI agents with any model build each document's pyramid.

Per document, in order: the insight windows (``windows.plan_windows``: every page read twice), the
concepts (in batches of ``concept_batch`` insights, then merged), the abstract. Documents run
concurrently: at most ``concurrency`` of them hold a slot, and a document holds it only while it
talks to the model, so embedding its items and writing them never keeps the model idle.

Every call goes through ``OutputCache`` (a resumed run does not pay twice) and ``run_agent``
(timeouts, 429/5xx and invalid output retried with backoff). A document whose calls still fail
raises ``DistillationError`` with the tokens it spent; the pipeline marks it failed and keeps its
old version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DistillationError, ModelError
from ..models import Usage
from ..store import NewItem
from .base import Distilled, PreparedDocument, UsageMeter, carry_over, record_usage
from .cache import OutputCache, digest, forget_unused
from .estimate import estimate_tokens, price_of
from .incremental import StoredInsight, WindowPlan, full_plan, incremental_plan, page_batches
from .windows import InsightBook

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.models import Model

    from ..config import Settings
    from ..runtime import Runtime

T = TypeVar("T", bound="BaseModel")


@dataclass
class ConceptDraft:
    name: str
    description: str
    insights: list[int]  # insight ordinals (1-based positions in the final insight list)


@dataclass
class _Agents:
    insights: Agent[Any, Any]
    concepts: Agent[Any, Any]
    merge: Agent[Any, Any]
    abstract: Agent[Any, Any]
    recollections: Agent[Any, Any]


class LLMDistiller:
    def __init__(
        self, settings: Settings, spec: str | Model, *, concurrency: int, resolve: bool = True
    ) -> None:
        from ..agents.base import CallPolicy, model_label

        self.settings = settings
        self.spec = spec
        self.name = model_label(spec)
        self.policy = CallPolicy.from_settings(settings)
        self.concurrency = concurrency
        # Resolving early turns a bad model string or a missing API key into one clear error
        # before any file is read.
        self._model: Model | None = self._resolve() if resolve else None
        self._slots: asyncio.Semaphore | None = None
        self._agents: _Agents | None = None
        self._used: dict[str, set[str]] = {}

    def _resolve(self) -> Model:
        from ..agents.base import resolve_model

        return resolve_model(self.spec)

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = self._resolve()
        return self._model

    @property
    def agents(self) -> _Agents:
        if self._agents is None:
            from ..agents.abstract import build_abstract_agent
            from ..agents.concepts import build_concept_agent, build_merge_agent
            from ..agents.insights import build_insight_agent
            from ..agents.recollections import build_recollection_agent

            self._agents = _Agents(
                build_insight_agent(),
                build_concept_agent(),
                build_merge_agent(),
                build_abstract_agent(),
                build_recollection_agent(),
            )
        return self._agents

    # -- estimates ------------------------------------------------------------------------------
    def estimate(self, pages: Sequence[str], *, title: str = "") -> Usage:
        return estimate_tokens(pages, self.settings, title=title)

    def price(self, usage: Usage) -> float | None:
        return price_of(self.name, usage)

    # -- one document ---------------------------------------------------------------------------
    async def distill(self, rt: Runtime, doc: PreparedDocument) -> Distilled:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        meter = UsageMeter(self.name)
        cache = OutputCache(rt, doc.source, self.name)
        await cache.load()
        try:
            plan = await self._plan(rt, doc)
            async with self._slots:
                book = await self._read(doc, plan, cache, meter)
                insights = book.alive()
                texts = [(n, entry.text, min(entry.pages)) for n, entry in enumerate(insights, start=1)]
                concepts = await self._concepts(doc, texts, cache, meter)
                abstract = await self._abstract(doc, texts, concepts, cache, meter) if concepts else None
        except ModelError as exc:
            await cache.flush()  # what succeeded stays cached: the next run resumes from there
            await record_usage(rt, doc.source, meter, failed=True)
            raise DistillationError(str(exc), usage=meter.total) from exc
        await cache.flush()
        items = self._items(insights, concepts, abstract)
        await carry_over(rt, doc, items)
        await record_usage(rt, doc.source, meter)
        self._used[doc.source] = cache.used
        # No embedding here: the pipeline's writer embeds the items, so this task is free for the
        # next document at once (waiting here for the encoder left the model idle).
        embed_text = {i.key: f"{i.title}: {i.text}" for i in items if i.level == "concept"}
        return Distilled(
            items=items, distiller=self.name, usage=meter.total, status="ready", embed_text=embed_text
        )

    async def call(
        self,
        step: str,
        agent: Agent[Any, T],
        user: str,
        deps: Any,
        *,
        cache: OutputCache,
        meter: UsageMeter,
        what: str,
        position: int | None = None,
        pages_key: str | None = None,
    ) -> T:
        """One model call, answered from the cache when the same call was made before."""
        # The source is part of the key: each cached row belongs to one document, so that keeping
        # only a stored version's outputs never touches another document's (a copy of the same file
        # elsewhere pays for its own calls).
        key = digest(cache.source, step, self.name, agent.name, str(agent.output_type), user)
        hit = await cache.get(key)
        output_type: Any = agent.output_type
        if hit is not None:
            meter.hit(step)
            return output_type.model_validate(hit)  # type: ignore[no-any-return]
        spent = Usage()

        def add(usage: Usage) -> None:
            nonlocal spent
            spent += usage
            meter.add(step, usage)

        from ..agents.base import run_agent

        output = await run_agent(
            agent, user, deps=deps, model=self.model, policy=self.policy, spent=add, what=what
        )
        cache.put(key, step, output, spent, position=position, pages_key=pages_key)
        return output

    async def _plan(self, rt: Runtime, doc: PreparedDocument) -> WindowPlan:
        """All windows for a new document; for a changed one only those that read a changed page
        (see ``pyramid.distill.incremental``), when the stored version was made by this model."""
        from .. import store

        if doc.stored is None:
            return full_plan(len(doc.pages))
        async with rt.db.connection() as conn:
            old_pages = await store.stored_pages(conn, doc.stored.id)
            old_insights = await store.document_items(conn, doc.stored.id, levels=["insight"])
        if not old_insights or any(view.distiller != self.name for view in old_insights):
            return full_plan(len(doc.pages))
        return incremental_plan(
            [page.content_hash or "" for page in old_pages],
            [page.content_hash or "" for page in doc.pages],
            [StoredInsight(view.text, view.pages) for view in old_insights],
        )

    async def _read(
        self, doc: PreparedDocument, plan: WindowPlan, cache: OutputCache, meter: UsageMeter
    ) -> InsightBook:
        from ..agents.insights import WindowDeps, window_prompt

        texts = [page.text for page in doc.pages]
        book = plan.book
        seen = set(plan.seen)
        for position, pages in plan.run:
            shown = book.for_pages(pages)
            user = window_prompt(
                doc.title,
                [(p, texts[p - 1], p in seen) for p in pages],
                [(entry.number, entry.text, entry.pages) for entry in shown],
                position=position,
                windows=plan.total,
            )
            deps = WindowDeps(pages=pages, shown=frozenset(entry.number for entry in shown))
            edits = await self.call(
                "insights",
                self.agents.insights,
                user,
                deps,
                cache=cache,
                meter=meter,
                what=f"insight window {position} of {plan.total} (pages {', '.join(map(str, pages))})",
                position=position,
                pages_key=digest(self.name, [texts[p - 1] for p in pages]),
            )
            book.apply(position, edits)
            seen.update(pages)
        return book

    async def _concepts(
        self,
        doc: PreparedDocument,
        insights: list[tuple[int, str, int]],
        cache: OutputCache,
        meter: UsageMeter,
    ) -> list[ConceptDraft]:
        from ..agents.concepts import NumbersDeps, concepts_prompt

        if not insights:
            return []
        # Batches cut at fixed page ranges and numbered from 1 inside each: an edit on one page
        # changes one batch's prompt, and every other batch is answered from the cache.
        batches = page_batches(
            insights, pages_per_batch=self.settings.concept_pages, max_insights=self.settings.concept_batch
        )
        drafts: list[ConceptDraft] = []
        for part, batch in enumerate(batches, start=1):
            local = [(n, text) for n, (_, text) in enumerate(batch, start=1)]
            found = await self.call(
                "concepts",
                self.agents.concepts,
                concepts_prompt(doc.title, local, part=part, parts=len(batches)),
                NumbersDeps(frozenset(range(1, len(batch) + 1))),
                cache=cache,
                meter=meter,
                what=f"concepts (part {part} of {len(batches)})",
            )
            drafts += [
                ConceptDraft(c.name.strip(), c.description.strip(), [batch[n - 1][0] for n in c.insights])
                for c in found.concepts
            ]
        return await self._merge(doc, drafts, cache, meter) if len(batches) > 1 else drafts

    async def _merge(
        self, doc: PreparedDocument, drafts: list[ConceptDraft], cache: OutputCache, meter: UsageMeter
    ) -> list[ConceptDraft]:
        """Merge batch concepts until one call has seen them all (chunks of concept_merge_batch)."""
        from ..agents.concepts import NumbersDeps, merge_prompt

        size = self.settings.concept_merge_batch
        while True:
            chunks = [drafts[i : i + size] for i in range(0, len(drafts), size)]
            merged: list[ConceptDraft] = []
            for chunk in chunks:
                rows = [(n, c.name, c.description) for n, c in enumerate(chunk, start=1)]
                result = await self.call(
                    "concepts",
                    self.agents.merge,
                    merge_prompt(doc.title, rows),
                    NumbersDeps(frozenset(range(1, len(chunk) + 1))),
                    cache=cache,
                    meter=meter,
                    what="concept merge",
                )
                for group in result.concepts:
                    members = sorted({i for n in group.merges for i in chunk[n - 1].insights})
                    merged.append(ConceptDraft(group.name.strip(), group.description.strip(), members))
            if len(chunks) == 1 or len(merged) >= len(drafts):
                return merged
            drafts = merged

    async def _abstract(
        self,
        doc: PreparedDocument,
        insights: list[tuple[int, str, int]],
        concepts: list[ConceptDraft],
        cache: OutputCache,
        meter: UsageMeter,
    ) -> tuple[str, list[int]]:
        from ..agents.abstract import AbstractDeps, abstract_prompt

        cap = self.settings.abstract_insights
        insights = [(n, text) for n, text, *_ in insights]
        shown = insights if len(insights) <= cap else [insights[i * len(insights) // cap] for i in range(cap)]
        rows = [(n, c.name, c.description) for n, c in enumerate(concepts, start=1)]
        words = self.settings.abstract_words
        result = await self.call(
            "abstract",
            self.agents.abstract,
            abstract_prompt(doc.title, rows, shown, max_words=words),
            AbstractDeps(frozenset(range(1, len(concepts) + 1)), words),
            cache=cache,
            meter=meter,
            what="abstract",
        )
        return result.text.strip(), list(result.concepts)

    def _items(
        self, insights: list[Any], concepts: list[ConceptDraft], abstract: tuple[str, list[int]] | None
    ) -> list[NewItem]:
        items: list[NewItem] = []
        for ordinal, entry in enumerate(insights, start=1):
            items.append(
                NewItem(
                    key=f"insight:{ordinal}",
                    level="insight",
                    text=entry.text,
                    ordinal=ordinal,
                    pages=entry.pages,
                    distiller=self.name,
                    meta={"key": entry.key, "number": entry.number},
                    sources=[f"page:{p}" for p in entry.pages],
                )
            )
        pages_of: Callable[[list[int]], list[int]] = lambda ordinals: sorted(  # noqa: E731
            {p for o in ordinals for p in insights[o - 1].pages}
        )
        for number, concept in enumerate(concepts, start=1):
            items.append(
                NewItem(
                    key=f"concept:{number}",
                    level="concept",
                    title=concept.name,
                    text=concept.description,
                    ordinal=number,
                    pages=pages_of(concept.insights),
                    distiller=self.name,
                    sources=[f"insight:{o}" for o in concept.insights],
                )
            )
        if abstract is not None and abstract[0]:
            text, used = abstract
            items.append(
                NewItem(
                    key="abstract",
                    level="abstract",
                    text=text,
                    ordinal=1,
                    pages=sorted({p for n in used for p in pages_of(concepts[n - 1].insights)}),
                    distiller=self.name,
                    sources=[f"concept:{n}" for n in used],
                )
            )
        return items

    # -- the corpus -----------------------------------------------------------------------------
    async def finish(self, rt: Runtime, document_ids: Sequence[int]) -> Usage:
        from ..sqlfiles import query
        from .llm_recollect import refresh_recollections

        async with rt.db.connection() as conn:
            cur = await conn.execute(query("distill.sources_of"), {"ids": list(document_ids)})
            sources = [source for _, source in await cur.fetchall()]
        stored = [s for s in sources if s in self._used]
        await forget_unused(rt, stored, sorted({key for s in stored for key in self._used.pop(s)}))
        return await refresh_recollections(rt, self, document_ids)
