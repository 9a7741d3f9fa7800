"""The LLM distiller: PydanticAI agents with any model build each document's pyramid.

Per document, in order: the insight windows (``windows.plan_windows``: every page read twice), the
concepts (in batches of ``concept_batch`` insights, then merged), the abstract. Documents run
concurrently: at most ``concurrency`` of them hold a slot, and a document holds it only while it
talks to the model, so embedding its items and writing them never keeps the model idle.

Every call goes through ``OutputCache`` (a resumed run does not pay twice) and ``run_agent``
(timeouts, 429/5xx and invalid output retried with backoff). A weak model costs quality, never the
document: a window whose call still fails is recorded (``Distilled.failures``) and the others go on;
a failed concept or abstract step is done by the extractive method instead (its items labelled
"extractive"); a document with no usable window at all is distilled extractively. Either way the
document is stored ``partial`` with its pages, and a later run re-distills it, paying only for the
calls that failed (the good ones are cached).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ModelError
from ..models import Usage
from ..store import NewItem
from .base import Distilled, PreparedDocument, UsageMeter, carry_over, record_usage
from .cache import OutputCache, digest, forget_unused
from .estimate import estimate_tokens, price_of
from .incremental import StoredInsight, WindowPlan, full_plan, incremental_plan, page_batches
from .items import abstract_item, concept_item, insight_item
from .windows import InsightBook

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.models import Model

    from ..agents.base import OutputModes
    from ..config import OutputMode, Settings
    from ..runtime import Runtime
    from ..slots import ClusterSlots

T = TypeVar("T", bound="BaseModel")
T2 = TypeVar("T2")
D = TypeVar("D")
# An agent factory of agents/ (``build_insight_agent`` …): the output mode in, the agent out.
AgentBuilder = Callable[["OutputMode"], "Agent[D, T]"]
EXTRACTIVE = "extractive"


class _NoUsableWindow(Exception):
    """Every window of a document failed: it is distilled the extractive way."""


@dataclass
class ConceptDraft:
    name: str
    description: str
    insights: list[int]  # insight ordinals (1-based positions in the final insight list)
    distiller: str | None = None  # who made it when not the model (the extractive fallback)


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
        # The cluster's cap (pyramid.slots.ClusterSlots), set by a queue worker: a slot of this
        # process is held only together with one of the database's.
        self.cluster: ClusterSlots | None = None
        self._agents: dict[tuple[Callable[..., Any], OutputMode], Agent[Any, Any]] = {}
        self._modes: OutputModes | None = None
        self._used: dict[str, set[str]] = {}
        self._max_tokens = {
            "insights": settings.insights_max_tokens,
            "concepts": settings.concepts_max_tokens,
            "abstract": settings.abstract_max_tokens,
            "recollections": settings.recollections_max_tokens,
        }

    def _resolve(self) -> Model:
        from ..agents.base import resolve_model

        return resolve_model(self.spec)

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = self._resolve()
        return self._model

    def agent(self, build: AgentBuilder[D, T], mode: OutputMode = "tool") -> Agent[D, T]:
        """The agent ``build`` makes for ``mode``, built once per distiller."""
        agent = self._agents.get((build, mode))
        if agent is None:
            agent = self._agents[build, mode] = build(mode)
        return agent

    def modes(self, rt: Runtime) -> OutputModes:
        """The output mode of this run (settings.output_mode; auto falls back once, on stderr)."""
        if self._modes is None:
            from ..agents.base import OutputModes

            self._modes = OutputModes(self.settings.output_mode, self.model, rt.say)
        return self._modes

    # -- estimates ------------------------------------------------------------------------------
    def estimate(self, pages: Sequence[str], *, title: str = "") -> Usage:
        return estimate_tokens(pages, self.settings, title=title)

    def price(self, usage: Usage) -> float | None:
        return price_of(self.name, usage)

    def _cluster_slot(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self.cluster.hold() if self.cluster is not None else contextlib.nullcontext()

    # -- one document ---------------------------------------------------------------------------
    async def distill(self, rt: Runtime, doc: PreparedDocument) -> Distilled:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        meter = UsageMeter(self.name)
        cache = OutputCache(rt, doc.source, self.name)
        await cache.load()
        self.modes(rt)
        failures: list[str] = []
        try:
            plan = await self._plan(rt, doc)
            async with self._slots, self._cluster_slot():
                book = await self._read(
                    doc,
                    plan,
                    cache,
                    meter,
                    failures,
                    lambda done, total: rt.step(doc.source, "reading insight windows", done, total),
                )
                insights = book.alive()
                if not insights:
                    # Every window failed, or every one answered with nothing: no pyramid either way
                    # (a weak model's valid-but-empty edits must not store a document without insights).
                    if not failures:
                        failures.append("the model wrote no insight for any window")
                    raise _NoUsableWindow()
                texts = [(n, entry.text, min(entry.pages)) for n, entry in enumerate(insights, start=1)]
                concepts = await self._step("concepts", failures, self._concepts(doc, texts, cache, meter))
                abstract = (
                    await self._step("abstract", failures, self._abstract(doc, texts, concepts, cache, meter))
                    if concepts
                    else None
                )
        except _NoUsableWindow:
            await cache.flush()  # what succeeded stays cached: the next run resumes from there
            await record_usage(rt, doc.source, meter, failed=True)
            return await self._extractive_document(rt, doc, meter, failures)
        await cache.flush()
        abstract_by = self.name
        if concepts is None or (concepts and abstract is None):
            abstract_by = EXTRACTIVE if abstract is None else self.name
            concepts, abstract = await self._extractive_steps(rt, insights, concepts, abstract)
        items = self._items(insights, concepts, abstract, abstract_by=abstract_by)
        await carry_over(rt, doc, items)
        await record_usage(rt, doc.source, meter, failed=bool(failures))
        self._used[doc.source] = cache.used
        # No embedding here: the pipeline's writer embeds the items, so this task is free for the
        # next document at once (waiting here for the encoder left the model idle).
        return Distilled(
            items=items,
            distiller=self.name,
            usage=meter.total,
            status="partial" if failures else "ready",
            failures=failures,
        )

    async def _step(self, step: str, failures: list[str], work: Awaitable[T2]) -> T2 | None:
        """``work``, or None (recorded in ``failures``) when its model calls failed."""
        try:
            return await work
        except ModelError as exc:
            failures.append(f"{step}: {exc} (done by the extractive method instead)")
            return None

    async def _extractive_steps(
        self,
        rt: Runtime,
        insights: list[Any],
        concepts: list[ConceptDraft] | None,
        abstract: tuple[str, list[int]] | None,
    ) -> tuple[list[ConceptDraft], tuple[str, list[int]] | None]:
        """The concepts (when their step failed) and the abstract of the model's insights, made
        the extractive way (clusters of the insights' embeddings, central sentences)."""
        from .fallback import extractive_abstract, extractive_concepts

        vectors = await rt.embedder.aencode_documents([entry.text for entry in insights])
        if concepts is None:
            concepts = [
                ConceptDraft(name, description, members, distiller=EXTRACTIVE)
                for name, description, members in extractive_concepts(
                    [entry.text for entry in insights], vectors, self.settings
                )
            ]
        if abstract is None and concepts:
            text, picked = extractive_abstract(
                [entry.text for entry in insights], vectors, self.settings.abstract_words
            )
            used = sorted({n for n, c in enumerate(concepts, start=1) if set(c.insights) & set(picked)})
            abstract = (text, used)
        return concepts, abstract

    async def _extractive_document(
        self, rt: Runtime, doc: PreparedDocument, meter: UsageMeter, failures: list[str]
    ) -> Distilled:
        """No window gave a usable answer: the document is distilled the extractive way rather
        than lost, and stored ``partial`` so that a later run tries the model again."""
        from .extractive import ExtractiveDistiller

        distilled = await ExtractiveDistiller(self.settings).distill(rt, doc)
        distilled.usage = meter.total
        distilled.status = "partial"
        distilled.failures = [*failures, "no window gave usable insights: distilled by the extractive method"]
        return distilled

    async def call(
        self,
        step: str,
        build: AgentBuilder[D, T],
        user: str,
        deps: D,
        *,
        cache: OutputCache,
        meter: UsageMeter,
        what: str,
        position: int | None = None,
        pages_key: str | None = None,
    ) -> T:
        """One model call of the agent ``build`` makes, answered from the cache when the same call
        was made before (in whatever output mode)."""
        from ..agents.base import plain_output_type

        agent = self.agent(build)
        output_type: Any = plain_output_type(agent.output_type)
        # The source is part of the key: each cached row belongs to one document, so that keeping
        # only a stored version's outputs never touches another document's (a copy of the same file
        # elsewhere pays for its own calls).
        key = digest(cache.source, step, self.name, agent.name, str(output_type), user)
        hit = await cache.get(key)
        if hit is not None:
            meter.hit(step)
            return output_type.model_validate(hit)
        spent = Usage()

        def add(usage: Usage) -> None:
            nonlocal spent
            spent += usage
            meter.add(step, usage)

        from ..agents.base import run_agent

        output = await run_agent(
            lambda mode: self.agent(build, mode),
            user,
            deps=deps,
            model=self.model,
            policy=self.policy,
            spent=add,
            what=what,
            max_tokens=self._max_tokens.get(step),
            modes=self._modes,
        )
        cache.put(key, step, output, spent, position=position, pages_key=pages_key)
        return output

    async def _plan(self, rt: Runtime, doc: PreparedDocument) -> WindowPlan:
        """All windows for a new document; for a changed one only those that read a changed page
        (see ``pyramid.distill.incremental``), when the stored version was made by this model."""
        from .. import store

        # A partial document is read again in full: the windows that worked come from the cache.
        if doc.stored is None or doc.stored.status == "partial":
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
        self,
        doc: PreparedDocument,
        plan: WindowPlan,
        cache: OutputCache,
        meter: UsageMeter,
        failures: list[str],
        report: Callable[[int, int], None] = lambda _done, _total: None,
    ) -> InsightBook:
        """Every window of the plan in order. A window whose call fails is recorded in
        ``failures`` and leaves the book as it was; the next window goes on from there. ``report``
        is told (windows done, windows to run) as each one starts, and at the end."""
        from ..agents.insights import WindowDeps, build_insight_agent, content_words, window_prompt

        texts = [page.text for page in doc.pages]
        book = plan.book
        seen = set(plan.seen)
        for done, (position, pages) in enumerate(plan.run):
            report(done, len(plan.run))
            shown = book.for_pages(pages)
            user = window_prompt(
                doc.title,
                [(p, texts[p - 1], p in seen) for p in pages],
                [(entry.number, entry.text, entry.pages) for entry in shown],
                position=position,
                windows=plan.total,
            )
            deps = WindowDeps(
                pages=pages,
                shown=frozenset(entry.number for entry in shown),
                words=frozenset(w for p in pages for w in content_words(texts[p - 1])),
            )
            try:
                edits = await self.call(
                    "insights",
                    build_insight_agent,
                    user,
                    deps,
                    cache=cache,
                    meter=meter,
                    what=f"insight window {position} of {plan.total} (pages {', '.join(map(str, pages))})",
                    position=position,
                    pages_key=digest(self.name, [texts[p - 1] for p in pages]),
                )
            except ModelError as exc:
                failures.append(str(exc))
                continue
            book.apply(position, edits)
            seen.update(pages)
        report(len(plan.run), len(plan.run))
        return book

    async def _concepts(
        self,
        doc: PreparedDocument,
        insights: list[tuple[int, str, int]],
        cache: OutputCache,
        meter: UsageMeter,
    ) -> list[ConceptDraft]:
        from ..agents.concepts import NumbersDeps, build_concept_agent, concepts_prompt

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
                build_concept_agent,
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
        from ..agents.concepts import NumbersDeps, build_merge_agent, merge_prompt

        size = self.settings.concept_merge_batch
        while True:
            chunks = [drafts[i : i + size] for i in range(0, len(drafts), size)]
            merged: list[ConceptDraft] = []
            for chunk in chunks:
                rows = [(n, c.name, c.description) for n, c in enumerate(chunk, start=1)]
                result = await self.call(
                    "concepts",
                    build_merge_agent,
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
        from ..agents.abstract import AbstractDeps, abstract_prompt, build_abstract_agent

        cap = self.settings.abstract_insights
        pairs = [(n, text) for n, text, *_ in insights]
        shown = pairs if len(pairs) <= cap else [pairs[i * len(pairs) // cap] for i in range(cap)]
        rows = [(n, c.name, c.description) for n, c in enumerate(concepts, start=1)]
        words = self.settings.abstract_words
        result = await self.call(
            "abstract",
            build_abstract_agent,
            abstract_prompt(doc.title, rows, shown, max_words=words),
            AbstractDeps(frozenset(range(1, len(concepts) + 1)), words),
            cache=cache,
            meter=meter,
            what="abstract",
        )
        return result.text.strip(), list(result.concepts)

    def _items(
        self,
        insights: list[Any],
        concepts: list[ConceptDraft],
        abstract: tuple[str, list[int]] | None,
        *,
        abstract_by: str,
    ) -> list[NewItem]:
        items: list[NewItem] = []
        for ordinal, entry in enumerate(insights, start=1):
            meta = {"key": entry.key, "number": entry.number}
            items.append(insight_item(ordinal, entry.text, entry.pages, distiller=self.name, meta=meta))
        pages_of: Callable[[list[int]], list[int]] = lambda ordinals: sorted(  # noqa: E731
            {p for o in ordinals for p in insights[o - 1].pages}
        )
        for number, concept in enumerate(concepts, start=1):
            items.append(
                concept_item(
                    number,
                    concept.name,
                    concept.description,
                    concept.insights,
                    pages_of(concept.insights),
                    distiller=concept.distiller or self.name,
                )
            )
        if abstract is not None and abstract[0]:
            text, used = abstract
            pages = sorted({p for n in used for p in pages_of(concepts[n - 1].insights)})
            items.append(abstract_item(text, used, pages, distiller=abstract_by))
        return items

    # -- the corpus -----------------------------------------------------------------------------
    async def finish(self, rt: Runtime, document_ids: Sequence[int]) -> Usage:
        from ..store import corpus
        from .llm_recollect import refresh_recollections

        self.modes(rt)

        async with rt.db.connection() as conn:
            sources = await corpus.sources_of(conn, document_ids)
        stored = [s for s in sources if s in self._used]
        await forget_unused(rt, stored, sorted({key for s in stored for key in self._used.pop(s)}))
        return await refresh_recollections(rt, self, document_ids)
