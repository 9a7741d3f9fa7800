"""Evidence: items of the pyramid as agents see them (what an item says, where it stands, and the exact
citation that names it), and the walk from one item to its neighbours in the pyramid (``expand``).

The value types (``Evidence``, ``Expansion``) live in ``pyramid.models``; the tools (``pyramid.tools``)
hand them out, so every agent cites the same way: ``[file, p. N]``. No pydantic_ai import here: the
API and the no-model path use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

from ..errors import NotFoundError
from ..models import DocumentRef, Evidence, Expansion, Level
from ..store import retrieval
from ..text import sentences

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from ..models import Hit
    from ..runtime import Runtime

# How many neighbours of one kind an expansion lists: a page can carry dozens of insights, and an
# agent that asked about one insight should not pay for all of them.
EXPAND_PER_KIND = 12
# Below this, a cut item says too little to be worth its citation.
MIN_ITEM_CHARS = 200
# An item whose sentences are this much said already adds nothing to the answer's evidence.
REDUNDANT = 0.8
# Text of one item in a tool result: a page is cut here (it can still be cited, and the answer step
# gets more of it within its own budget); insights and concepts are far shorter.
TOOL_TEXT_CHARS = 1500


# --- citations: labels and page lists ----------------------------------------------------------------


def format_pages(pages: Sequence[int]) -> str:
    """``p. 3``, ``pp. 2–4``, ``pp. 2–3, 7``; empty for no pages."""
    numbers = sorted(set(pages))
    if not numbers:
        return ""
    runs: list[list[int]] = [[numbers[0], numbers[0]]]
    for n in numbers[1:]:
        if n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
    return ("p. " if len(numbers) == 1 else "pp. ") + text


def cite(label: str | None, pages: Sequence[int], *, item_id: int, level: Level) -> str:
    if label is None:
        return f"[{level} {item_id}]"
    shown = format_pages(pages)
    return f"[{label}, {shown}]" if shown else f"[{label}]"


class Labels:
    """The name each document is cited by: its file name, or, when two documents of one tool session
    (one ``ask``, one toolset, one MCP session) share a file name, as much of the path as tells them
    apart. A label never changes once given, so a citation the model saw in an early tool result
    stays valid for the whole session."""

    def __init__(self) -> None:
        self._by_source: dict[str, str] = {}
        self._taken: dict[str, str] = {}

    def __call__(self, source: str, path: str) -> str:
        known = self._by_source.get(source)
        if known is not None:
            return known
        parts = PurePath(path).parts or (path,)
        suffix = ""
        if source != path and source.startswith(path + "#"):
            # One document per feed item: "news.rss#fh-2031-03" (a URL key keeps its last segment).
            key = source[len(path) + 1 :].rstrip("/")
            suffix = "#" + (key.rsplit("/", 1)[-1] or key)
        label = source
        for depth in range(1, len(parts) + 1):
            candidate = "/".join(parts[-depth:]).lstrip("/") + suffix
            if self._taken.get(candidate, source) == source:
                label = candidate
                break
        # Brackets would end a citation early; nothing else in a label confuses the parser.
        label = label.replace("[", "(").replace("]", ")")
        self._by_source[source] = label
        self._taken[label] = source
        return label


# --- reading items ---------------------------------------------------------------------------------------


def _evidence(row: dict[str, Any], labels: Labels, score: float | None = None) -> Evidence:
    """An item row (id, level, text, title, pages, stale, document_id, source, path, document_title)
    as evidence, its document named by ``labels``."""
    pages = list(row["pages"] or [])
    source = row["source"]
    label = labels(source, row["path"] or source) if source is not None else None
    return Evidence(
        id=row["id"],
        level=row["level"],
        text=row["text"],
        title=row["title"],
        document=label,
        document_title=row["document_title"],
        source=source,
        document_id=row["document_id"],
        pages=pages,
        cite=cite(label, pages, item_id=row["id"], level=row["level"]),
        stale=row["stale"],
        score=score,
    )


def from_hit(hit: Hit, labels: Labels) -> Evidence:
    """A search hit as evidence: the hit row carries everything a citation needs, so nothing is
    read again. Scored by the rerank score when reranked, else the fused score."""
    return _evidence(hit.model_dump(), labels, score=hit.rerank if hit.rerank is not None else hit.fused)


async def load(conn: AsyncConnection[Any], ids: Sequence[int], labels: Labels) -> dict[int, Evidence]:
    """The items ``ids`` as evidence, by id (ids that do not exist are left out)."""
    if not ids:
        return {}
    return {row["id"]: _evidence(row, labels) for row in await retrieval.items(conn, ids)}


Relation = Literal["source", "derived", "abstract"]


async def expand(conn: AsyncConnection[Any], item_id: int, labels: Labels) -> Expansion:
    """Walk the pyramid one step from ``item_id``: an insight's page(s), concept(s) and abstract; a
    concept's insights; an abstract's concepts; a page's insights; a recollection's sources."""
    rows = await retrieval.expand(conn, item_id, per_kind=EXPAND_PER_KIND)
    own = next((row for row in rows if row["relation"] == "item"), None)
    if own is None:
        raise NotFoundError(f"no item with id {item_id}")
    result = Expansion(item=_evidence(own, labels))
    seen = {item_id}
    for row in rows:
        if row is own:
            continue
        relation: Relation = row["relation"]
        neighbour = _evidence(row, labels)
        if neighbour.id in seen:
            continue
        seen.add(neighbour.id)
        _place(result, relation, neighbour)
    for doc in own["source_documents"]:
        if doc["source"] is None:  # the document is gone; its trail survives in source_ref
            ref = doc["source_ref"]
            result.documents.append(DocumentRef(document=ref or "(deleted)", cite=f"[{ref or 'deleted'}]"))
            continue
        label = labels(doc["source"], doc["path"])
        result.documents.append(
            DocumentRef(
                id=doc["id"], document=label, title=doc["title"], source=doc["source"], cite=f"[{label}]"
            )
        )
    return result


def _place(result: Expansion, relation: Relation, neighbour: Evidence) -> None:
    if relation == "abstract":
        result.abstract.append(neighbour)
    elif result.item.level == "recollection" and relation == "source":
        result.sources.append(neighbour)
    elif neighbour.level == "recollection":
        result.recollections.append(neighbour)
    else:
        {
            "page": result.pages,
            "insight": result.insights,
            "concept": result.concepts,
            "abstract": result.abstract,
        }[neighbour.level].append(neighbour)


# --- what the tools and the answer step use ----------------------------------------------------------


async def search_items(
    rt: Runtime,
    text: str,
    *,
    levels: Sequence[str] | None,
    k: int,
    labels: Labels,
    rerank: bool | None = None,
) -> list[Evidence]:
    """Hybrid search, each hit as citable evidence."""
    from .hybrid import search

    hits = await search(rt, text, levels=levels, k=k, rerank=rerank)
    return [from_hit(hit, labels) for hit in hits]


async def expand_item(rt: Runtime, item_id: int, labels: Labels) -> Expansion:
    async with rt.db.connection() as conn:
        return await expand(conn, item_id, labels)


async def rank(rt: Runtime, question: str, items: Sequence[Evidence], *, first: set[int]) -> list[Evidence]:
    """Order gathered evidence for the answer step: items in ``first`` (what the agent noted) lead,
    then the rest; within each group by cross-encoder score when a reranker is configured, else by
    the cosine similarity of the stored embedding to the question. Scores of different searches are
    not comparable, so the search scores the items came with are not used."""
    if not items:
        return []
    settings = rt.settings
    if settings.reranker:
        import asyncio

        from .rerank import score_pairs

        values = await asyncio.to_thread(
            score_pairs,
            settings.reranker,
            question,
            [e.text for e in items],
            device=settings.embedding_device,
        )
        scores = dict(zip([e.id for e in items], values, strict=True))
    else:
        embedding = (await rt.embedder.aencode_queries([question]))[0]
        async with rt.db.connection() as conn:
            scores = await retrieval.similarity(conn, [e.id for e in items], embedding)
    scored = [e.model_copy(update={"score": scores.get(e.id, 0.0)}) for e in items]
    scored.sort(key=lambda e: (e.id not in first, -(e.score or 0.0)))
    return scored


def select(items: Sequence[Evidence], *, limit: int, chars: int) -> list[Evidence]:
    """The first ``limit`` items whose text fits in ``chars`` characters. An item whose sentences the
    items before it already say is skipped: an extractive concept or abstract is made of its insights'
    sentences, and sending them twice buys nothing. An item that does not fit whole is cut to the room
    left (a long page still contributes its beginning)."""
    chosen: list[Evidence] = []
    said: set[str] = set()
    used = 0
    for item in items:
        room = chars - used
        if len(chosen) >= limit or room < MIN_ITEM_CHARS:
            break
        sentences = _sentences(item.text)
        if sentences and len(sentences & said) >= REDUNDANT * len(sentences):
            continue
        item = item.clipped(room)
        chosen.append(item)
        said |= sentences
        used += len(item.text)
    return chosen


def _sentences(text: str) -> set[str]:
    return {" ".join(s.lower().split()).rstrip(".!?…。！？") for s in sentences(text)}
