"""Evidence: items of the pyramid as agents see them (what an item says, where it stands, and the exact
citation that names it), and the walk from one item to its neighbours in the pyramid (``expand``).

The search agent, ``Pyramid.toolset()`` and the MCP server all hand out these values, so every agent
cites the same way: ``[file, p. N]``. No pydantic_ai import here: the API and the no-model path use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .config import Level
from .errors import NotFoundError
from .sqlfiles import query
from .text import sentences

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .runtime import Runtime
    from .search import Hit

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


class Evidence(BaseModel):
    """One item of the pyramid, ready to cite."""

    id: int = Field(description="item id (give it to expand, or to note)")
    level: Level
    text: str
    title: str | None = Field(None, description="a concept's name")
    document: str | None = Field(
        None, description="the file as cited (None for a cross-document recollection)"
    )
    document_title: str | None = None
    source: str | None = Field(None, description="the document's full source path")
    document_id: int | None = None
    pages: list[int] = Field(default_factory=list)
    cite: str = Field(description="the citation that names this item, e.g. [handbook.md, p. 2]")
    stale: bool = Field(False, description="a recollection whose sources changed since it was made")
    score: float | None = Field(None, description="search or rerank score, where it came from a search")
    truncated: bool = Field(False, description="the text was shortened for this listing")

    def clipped(self, chars: int) -> Evidence:
        """The same item with its text cut to ``chars`` characters (at a word boundary)."""
        if len(self.text) <= chars:
            return self
        cut = self.text[:chars].rsplit(" ", 1)[0] if " " in self.text[:chars] else self.text[:chars]
        return self.model_copy(update={"text": cut.rstrip() + " …", "truncated": True})

    def brief(self, chars: int | None = None) -> dict[str, Any]:
        """What a model reads (tool results, the answer's evidence): id, level, citation, text, and a
        title, stale or truncated mark only when set. The source path, ids and scores stay out: they
        cost tokens on every item and tell a model nothing it can cite."""
        item = self if chars is None else self.clipped(chars)
        return {name: value for name in BRIEF_FIELDS if (value := getattr(item, name)) not in (None, False)}


class DocumentRef(BaseModel):
    """A whole document an item was built from (a recollection's audit trail)."""

    id: int | None = Field(None, description="None when the document is gone")
    document: str = Field(description="the file as cited")
    title: str | None = None
    source: str | None = None
    cite: str


class Expansion(BaseModel):
    """An item and its neighbours in the pyramid: the pages it rests on, the insights and concepts it
    is built from or feeds, its document's abstract, and for a recollection its sources."""

    item: Evidence
    pages: list[Evidence] = Field(default_factory=list, description="the page(s) the item rests on")
    insights: list[Evidence] = Field(
        default_factory=list, description="a concept's insights; a page's insights"
    )
    concepts: list[Evidence] = Field(
        default_factory=list, description="concepts built on it (or an abstract's)"
    )
    abstract: list[Evidence] = Field(default_factory=list, description="its document's abstract")
    sources: list[Evidence] = Field(
        default_factory=list, description="the items a recollection was built from"
    )
    documents: list[DocumentRef] = Field(
        default_factory=list, description="documents a recollection cites whole"
    )
    recollections: list[Evidence] = Field(default_factory=list, description="recollections built on the item")

    def neighbours(self) -> list[Evidence]:
        return [
            *self.pages,
            *self.insights,
            *self.concepts,
            *self.abstract,
            *self.sources,
            *self.recollections,
        ]

    def brief(self, chars: int | None = None) -> dict[str, Any]:
        """What a model reads: every item brief (texts cut to ``chars``), empty kinds left out."""
        out: dict[str, Any] = {"item": self.item.brief(chars)}
        for name in NEIGHBOUR_KINDS:
            items = getattr(self, name)
            if items:
                out[name] = [e.brief(chars) for e in items]
        if self.documents:
            out["documents"] = [
                d.model_dump(include={"document", "title", "cite"}, exclude_none=True) for d in self.documents
            ]
        return out


BRIEF_FIELDS = ("id", "level", "cite", "title", "text", "stale", "truncated")
NEIGHBOUR_KINDS = ("pages", "insights", "concepts", "abstract", "sources", "recollections")


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
    """The name each document is cited by: its file name, or, when two documents of one run share a
    file name, as much of the path as tells them apart. A label never changes once given, so a
    citation the model saw in an early tool result stays valid for the whole run."""

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

    def items(self) -> Iterable[tuple[str, str]]:
        """(label, source) pairs given so far."""
        return ((label, source) for source, label in self._by_source.items())


# --- reading items ---------------------------------------------------------------------------------------


def _evidence(row: Sequence[Any], labels: Labels, score: float | None = None) -> Evidence:
    item_id, level, text, title, pages, stale, doc_id, source, path, doc_title = row[:10]
    pages = list(pages or [])
    label = labels(source, path) if source is not None else None
    return Evidence(
        id=item_id,
        level=level,
        text=text,
        title=title,
        document=label,
        document_title=doc_title,
        source=source,
        document_id=doc_id,
        pages=pages,
        cite=cite(label, pages, item_id=item_id, level=level),
        stale=stale,
        score=score,
    )


async def load(conn: AsyncConnection, ids: Sequence[int], labels: Labels) -> dict[int, Evidence]:
    """The items ``ids`` as evidence, by id (ids that do not exist are left out)."""
    if not ids:
        return {}
    cur = await conn.execute(query("ask.items"), {"ids": list(ids)})
    return {row[0]: _evidence(row, labels) for row in await cur.fetchall()}


async def from_hits(conn: AsyncConnection, hits: Sequence[Hit], labels: Labels) -> list[Evidence]:
    """Search hits as evidence, in rank order, scored by rerank score when reranked, else fused."""
    found = await load(conn, [h.id for h in hits], labels)
    out = []
    for hit in hits:
        item = found.get(hit.id)
        if item is not None:  # deleted between the search and this read
            out.append(item.model_copy(update={"score": hit.rerank if hit.rerank is not None else hit.fused}))
    return out


Relation = Literal["source", "derived", "abstract"]


async def expand(conn: AsyncConnection, item_id: int, labels: Labels) -> Expansion:
    """Walk the pyramid one step from ``item_id``: an insight's page(s), concept(s) and abstract; a
    concept's insights; an abstract's concepts; a page's insights; a recollection's sources."""
    found = await load(conn, [item_id], labels)
    if item_id not in found:
        raise NotFoundError(f"no item with id {item_id}")
    item = found[item_id]
    result = Expansion(item=item)
    cur = await conn.execute(query("ask.related"), {"id": item_id, "per_kind": EXPAND_PER_KIND})
    seen = {item_id}
    for row in await cur.fetchall():
        relation: Relation = row[0]
        neighbour = _evidence(row[1:], labels)
        if neighbour.id in seen:
            continue
        seen.add(neighbour.id)
        _place(result, relation, neighbour)
    cur = await conn.execute(query("ask.source_documents"), {"id": item_id})
    for doc_id, source, path, title, ref in await cur.fetchall():
        if source is None:  # the document is gone; its trail survives in source_ref
            result.documents.append(DocumentRef(document=ref or "(deleted)", cite=f"[{ref or 'deleted'}]"))
            continue
        label = labels(source, path)
        result.documents.append(
            DocumentRef(id=doc_id, document=label, title=title, source=source, cite=f"[{label}]")
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


async def similarity(conn: AsyncConnection, ids: Sequence[int], embedding: Any) -> dict[int, float]:
    """Cosine similarity of stored items to a query embedding (items without an embedding score 0)."""
    cur = await conn.execute(query("ask.similarity"), {"ids": list(ids), "embedding": embedding})
    return {item_id: float(score or 0.0) for item_id, score in await cur.fetchall()}


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
    from .search import search

    hits = await search(rt, text, levels=levels, k=k, rerank=rerank)
    async with rt.db.connection() as conn:
        return await from_hits(conn, hits, labels)


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
            scores = await similarity(conn, [e.id for e in items], embedding)
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
