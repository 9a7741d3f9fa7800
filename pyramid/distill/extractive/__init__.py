"""The extractive distiller: the pyramid without an LLM, and without the network.

- insights: the document's sentences (markdown-aware: list items and table rows become sentences,
  headings become context), minus page furniture and near-duplicates (FAISS cosine);
- concepts: FAISS k-means over the insight embeddings, each named by the key phrases that set its
  cluster apart, described by its most central sentences; the clusters partition the insights;
- abstract: the most central, mutually non-redundant sentences (centroid + MMR) within a word budget;
- recollections (after a batch): groups of similar concepts from two or more documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...models import Usage
from ...store import NewItem
from ..base import Distilled, EmbedBatcher, PreparedDocument, carry_over
from ..items import abstract_item, concept_item, insight_item
from .segment import Candidate, drop_repeated, normalize, segment, words

if TYPE_CHECKING:
    import numpy as np

    from ...config import Settings
    from ...runtime import Runtime

NAME = "extractive"
SENTENCE_CHUNK = 128  # sentences per encoder request of one document (each chunk is reported)


@dataclass
class _Insight:
    text: str
    pages: list[int]
    spans: list[tuple[int, int, int]]  # (page, start, end) of every sentence it stands for
    kind: str
    section: str
    row: int  # its row in the embedding matrix
    context: tuple[str, ...] = ()  # the context put before its sentence ("Handbook, Teams")
    body: str = ""  # the sentence without that context


def _unique(candidates: list[Candidate]) -> tuple[list[_Insight], list[str]]:
    """Exact repeats (same words) collapse before anything is embedded."""
    by_text: dict[str, _Insight] = {}
    order: list[_Insight] = []
    for cand in candidates:
        key = normalize(cand.text)
        found = by_text.get(key)
        if found is not None:
            if cand.page not in found.pages:
                found.pages.append(cand.page)
            found.spans.append((cand.page, cand.start, cand.end))
            continue
        insight = _Insight(
            cand.text,
            [cand.page],
            [(cand.page, cand.start, cand.end)],
            cand.kind,
            cand.section,
            len(order),
            cand.context,
            cand.body,
        )
        by_text[key] = insight
        order.append(insight)
    return order, [i.text for i in order]


def _dedupe(
    insights: list[_Insight], vectors: np.ndarray, threshold: float
) -> tuple[list[_Insight], np.ndarray]:
    from .cluster import near_duplicates

    owner = near_duplicates(vectors, threshold)
    kept: list[_Insight] = []
    for insight, own in zip(insights, owner, strict=True):
        if own == -1:
            kept.append(insight)
            continue
        first = insights[own]
        for page in insight.pages:
            if page not in first.pages:
                first.pages.append(page)
        first.spans.extend(insight.spans)
    rows = [i.row for i in kept]
    for number, insight in enumerate(kept):
        insight.row = number
        insight.pages.sort()
    return kept, vectors[rows]


@dataclass
class _Concept:
    name: str
    description: str
    members: list[int]  # insight indexes, in document order


def _concepts(insights: list[_Insight], vectors: np.ndarray, settings: Settings) -> list[_Concept]:
    from .cluster import centrality, key_phrases, kmeans

    if not insights:
        return []
    k = min(settings.max_concepts, max(1, -(-len(insights) // settings.insights_per_concept)))
    labels = kmeans(vectors, k)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    members = [groups[label] for label in sorted(groups)]
    names = key_phrases([[insights[i].text for i in group] for group in members])
    concepts = []
    for group, name in zip(members, names, strict=True):
        central = centrality(vectors, group)[:3]
        description = _once(insights[i] for i in sorted(central))
        concepts.append(_Concept(", ".join(name) or insights[central[0]].text[:60], description, group))
    return concepts


def _abstract(insights: list[_Insight], vectors: np.ndarray, budget: int) -> tuple[str, list[int]]:
    from .cluster import mmr

    if not insights:
        return "", []
    lengths = [len(words(i.text)) for i in insights]
    picked = sorted(mmr(vectors, budget, lengths))
    text = _once(insights[i] for i in picked)
    if len(words(text)) > budget:  # a single sentence longer than the budget: cut it at a word
        tokens = text.split()
        text = " ".join(tokens[:budget]).rstrip(",;:") + " …"
    return text, picked


def _once(insights: Iterable[_Insight]) -> str:
    """Sentences joined into one text that gives each part of their context once: a handbook's
    abstract says "Fernhollow Robotics Employee Handbook, Teams:" before its first team, not eight
    times. A sentence whose context was all said already is given bare."""
    said: set[str] = set()
    parts = []
    for insight in insights:
        new = [part for part in insight.context if part not in said]
        said.update(insight.context)
        if insight.context and len(new) < len(insight.context):
            parts.append(f"{', '.join(new)}: {insight.body}" if new else insight.body)
        else:
            parts.append(insight.text)
    return " ".join(parts)


class ExtractiveDistiller:
    """See the module docstring. Stateless across documents; safe to run concurrently."""

    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # CPU work (segmenting, FAISS) of at most two documents at once: the machine's cores are
        # shared with the embedder thread, and more would only queue.
        self._cpu = asyncio.Semaphore(2)
        self._batcher: EmbedBatcher | None = None

    def _encoder(self, rt: Runtime) -> EmbedBatcher:
        if self._batcher is None:
            self._batcher = EmbedBatcher(rt)
        return self._batcher

    def estimate(self, pages: Sequence[str], *, title: str = "") -> Usage:
        return Usage()  # no LLM, no tokens

    def price(self, usage: Usage) -> float | None:
        return 0.0

    async def distill(self, rt: Runtime, doc: PreparedDocument) -> Distilled:
        texts = [page.text for page in doc.pages]
        async with self._cpu:
            candidates = await asyncio.to_thread(self._segment, texts, doc.title)
        unique, sentences = _unique(candidates)
        vectors = await self._encode(rt, doc.source, sentences)
        async with self._cpu:
            insights, vectors, concepts, (abstract, picked) = await asyncio.to_thread(
                self._build, unique, vectors
            )
        items = self._items(insights, vectors, concepts, abstract, picked)
        await carry_over(rt, doc, items)
        # Concepts and the abstract are embedded by the pipeline's writer (see Distilled).
        return Distilled(items=items, distiller=NAME, usage=Usage(), status="ready")

    async def _encode(self, rt: Runtime, source: str, sentences: list[str]) -> np.ndarray:
        """The sentences' vectors, in chunks reported as ``step`` events (a long document's
        sentences are minutes of encoding on a CPU)."""
        import numpy as np

        if len(sentences) <= SENTENCE_CHUNK:
            return await self._encoder(rt).encode(sentences)
        parts = []
        for start in range(0, len(sentences), SENTENCE_CHUNK):
            parts.append(await self._encoder(rt).encode(sentences[start : start + SENTENCE_CHUNK]))
            rt.step(
                source, "embedding sentences", min(start + SENTENCE_CHUNK, len(sentences)), len(sentences)
            )
        return np.concatenate(parts)

    def _segment(self, pages: list[str], title: str) -> list[Candidate]:
        return drop_repeated(segment(pages, subject=title), len(pages))

    def _build(
        self, unique: list[_Insight], vectors: np.ndarray
    ) -> tuple[list[_Insight], np.ndarray, list[_Concept], tuple[str, list[int]]]:
        insights, vectors = _dedupe(unique, vectors, self.settings.duplicate_threshold)
        concepts = _concepts(insights, vectors, self.settings)
        return insights, vectors, concepts, _abstract(insights, vectors, self.settings.abstract_words)

    def _items(
        self,
        insights: list[_Insight],
        vectors: np.ndarray,
        concepts: list[_Concept],
        abstract: str,
        picked: list[int],
    ) -> list[NewItem]:
        items: list[NewItem] = []
        for number, insight in enumerate(insights, start=1):
            meta = {
                "spans": [list(span) for span in insight.spans],
                "kind": insight.kind,
                "section": insight.section,
            }
            items.append(
                insight_item(
                    number,
                    insight.text,
                    insight.pages,
                    distiller=NAME,
                    meta=meta,
                    embedding=vectors[insight.row],
                )
            )
        concept_of: dict[int, int] = {}
        for number, concept in enumerate(concepts, start=1):
            for member in concept.members:
                concept_of[member] = number
            pages = sorted({page for m in concept.members for page in insights[m].pages})
            members = [m + 1 for m in concept.members]
            items.append(
                concept_item(number, concept.name, concept.description, members, pages, distiller=NAME)
            )
        if abstract:
            used = sorted({concept_of[i] for i in picked})
            pages = sorted({page for i in picked for page in insights[i].pages})
            shown = {"insights": [i + 1 for i in picked]}
            items.append(abstract_item(abstract, used, pages, distiller=NAME, meta=shown))
        return items

    async def finish(self, rt: Runtime, document_ids: Sequence[int]) -> Usage:
        from .recollect import refresh_recollections

        await refresh_recollections(rt)
        return Usage()
