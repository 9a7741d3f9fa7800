"""Hybrid search: BM25 and vector legs per level, fused, optionally reranked by a cross-encoder.

The ranking itself is the SQL function ``pyramid_search`` (``pyramid/sql/002_search.sql``), so a psql
user and this module get the same answer; here the query is checked, embedded, handed over as bound
parameters, and the rows become ``Hit`` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel, Field

from .config import LEVELS, Fusion, Level, SearchMode
from .errors import SearchError
from .sqlfiles import query as sql

if TYPE_CHECKING:
    from .db import Database
    from .runtime import Runtime

MODES: tuple[SearchMode, ...] = ("hybrid", "bm25", "vector")
FUSIONS: tuple[Fusion, ...] = ("rrf", "weighted")
# to_tsvector refuses text whose tsvector would pass 1 MB; a query this long is not a search anyway.
MAX_QUERY_CHARS = 100_000
MAX_K = 1000


class SearchOptions(TypedDict, total=False):
    """The keyword options of ``Pyramid.search`` (and ``search`` below)."""

    levels: Sequence[str] | str | None
    k: int | None
    mode: str | None
    rerank: bool | str | None
    documents: Sequence[str] | str | None
    fusion: str | None


class Hit(BaseModel):
    """One search result: an item of some level, where it comes from, and how it scored."""

    rank: int = Field(description="1-based position in the result")
    id: int = Field(description="item id")
    level: Level
    text: str
    title: str | None = Field(None, description="the item's own title (a concept's name)")
    document_id: int | None = Field(None, description="None for cross-document recollections")
    source: str | None = Field(None, description="the document's source path")
    document_title: str | None = None
    pages: list[int] = Field(default_factory=list)
    stale: bool = False
    fused: float = Field(description="fused score (RRF or weighted) the result is ordered by, before rerank")
    bm25: float | None = Field(None, description="Okapi BM25 within the item's level")
    bm25_rank: int | None = None
    vector: float | None = Field(None, description="cosine similarity to the query")
    vector_rank: int | None = None
    rerank: float | None = Field(None, description="cross-encoder score, when reranked")


def _levels(levels: Sequence[str] | str | None) -> list[Level] | None:
    if levels is None:
        return None
    if isinstance(levels, str):
        levels = [levels]
    chosen: list[Level] = []
    for name in levels:
        if name not in LEVELS:
            raise SearchError(f"unknown level {name!r} (levels: {', '.join(LEVELS)})")
        if name not in chosen:
            chosen.append(name)  # type: ignore[arg-type]
    if not chosen:
        raise SearchError("no level to search: name at least one, or none for every level")
    return chosen


def _documents(documents: Sequence[str] | str | None) -> list[str] | None:
    if documents is None:
        return None
    globs = [documents] if isinstance(documents, str) else list(documents)
    cleaned = [g.strip() for g in globs if g.strip()]
    if not cleaned:
        raise SearchError(
            "an empty document pattern matches nothing; leave --doc out to search every document"
        )
    return cleaned


def _query_text(text: str) -> str:
    if not isinstance(text, str):
        raise SearchError(f"the query must be text, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"the query is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,}")
    # PostgreSQL text cannot hold NUL; it carries no meaning in a query, so it becomes a space.
    return text.replace("\x00", " ")


async def search(
    rt: Runtime,
    text: str,
    *,
    levels: Sequence[str] | str | None = None,
    k: int | None = None,
    mode: str | None = None,
    rerank: bool | str | None = None,
    documents: Sequence[str] | str | None = None,
    fusion: str | None = None,
) -> list[Hit]:
    """Search the pyramid; see ``Pyramid.search``."""
    settings = rt.settings
    mode = mode or "hybrid"
    if mode not in MODES:
        raise SearchError(f"unknown search mode {mode!r} (modes: {', '.join(MODES)})")
    fusion = fusion or settings.fusion
    if fusion not in FUSIONS:
        raise SearchError(f"unknown fusion {fusion!r} (fusions: {', '.join(FUSIONS)})")
    k = settings.search_k if k is None else k
    if not 1 <= k <= MAX_K:
        raise SearchError(f"k must be between 1 and {MAX_K}, not {k}")
    chosen_levels = _levels(levels)
    globs = _documents(documents)
    text = _query_text(text)
    reranker = resolve_reranker(rerank, settings.reranker)
    if not text.strip():
        return []
    fetch = max(k, settings.rerank_top) if reranker else k
    embedding = None
    if mode != "bm25":
        embedding = (await rt.embedder.aencode_queries([text]))[0]
    hits = await _run(
        rt.db,
        {
            "query": text,
            "embedding": embedding,
            "levels": chosen_levels,
            "k": fetch,
            "mode": mode,
            "docs": globs,
            "fusion": fusion,
            "rrf_k": settings.rrf_k,
            "weight_bm25": settings.weight_bm25,
            "candidates": settings.candidates,
            "k1": settings.bm25_k1,
            "b": settings.bm25_b,
        },
        parallel=min(settings.search_parallel, settings.pool_size),
    )
    if reranker and hits:
        from .rerank import rerank_hits

        hits = await rerank_hits(
            reranker, text, hits, top=settings.rerank_top, device=settings.embedding_device
        )
    return hits[:k]


async def _run(db: Database, params: dict[str, Any], *, parallel: int = 1) -> list[Hit]:
    """Run ``pyramid_search``. With ``parallel`` > 1 and several levels, each level is searched on
    its own connection at the same time and the lists are merged here exactly as the SQL function
    merges its levels (by fused score, then similarity, then id): every level is ranked on its own
    there too, so the result is the same, in the time of the slowest level rather than of all."""
    import asyncio

    import psycopg

    levels = list(params["levels"] or LEVELS)
    if parallel < 2 or len(levels) < 2:
        groups = [params["levels"]]
    else:
        groups = [[level] for level in levels]
    limit = asyncio.Semaphore(max(1, parallel))

    async def one(chosen: list[str] | None) -> list[tuple[Any, ...]]:
        async with limit, db.connection() as conn:
            cur = await conn.execute(sql("search.run"), {**params, "levels": chosen})
            return await cur.fetchall()

    try:
        results = await asyncio.gather(*(one(group) for group in groups))
    except psycopg.errors.InvalidParameterValue as exc:  # pyramid_search's own checks, for its psql users
        raise SearchError(str(exc.diag.message_primary or exc)) from None
    if len(results) == 1:
        return [_hit(row) for row in results[0]]
    # (rank, item_id, level, fused, bm25, bm25_rank, similarity, …): the SQL function's final order.
    rows = sorted(
        (row for rows in results for row in rows), key=lambda r: (-r[3], r[6] is None, -(r[6] or 0.0), r[1])
    )[: params["k"]]
    return [_hit((rank, *row[1:])) for rank, row in enumerate(rows, start=1)]


def _hit(row: Sequence[Any]) -> Hit:
    (
        rank,
        item_id,
        level,
        fused,
        bm25,
        bm25_rank,
        similarity,
        vector_rank,
        text,
        title,
        pages,
        stale,
        doc_id,
        source,
        doc_title,
    ) = row
    return Hit(
        rank=rank,
        id=item_id,
        level=level,
        text=text,
        title=title,
        document_id=doc_id,
        source=source,
        document_title=doc_title,
        pages=list(pages or []),
        stale=stale,
        fused=fused,
        bm25=bm25,
        bm25_rank=bm25_rank,
        vector=similarity,
        vector_rank=vector_rank,
    )


# A real, small cross-encoder; used when rerank is asked for without naming one (needs the hub or
# a local copy under this name).
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"


def resolve_reranker(rerank: bool | str | None, configured: str | None) -> str | None:
    """The cross-encoder to use: a name given here, else the configured one when rerank is True or
    not said (None), else nothing (False)."""
    if rerank is False:
        return None
    if isinstance(rerank, str):
        name = rerank.strip()
        if not name:
            return configured or DEFAULT_RERANKER
        return name
    if rerank is True:
        return configured or DEFAULT_RERANKER
    return configured


async def compact(db: Database, *, k1: float = 1.2, b: float = 0.75) -> tuple[int, list[str]]:
    """Fold BM25 statistics deltas into the compacted tables (safe at any time, from any process);
    returns the delta rows folded and the levels whose stored impacts were recomputed."""
    async with db.connection() as conn:
        cur = await conn.execute(sql("search.compact"), {"k1": k1, "b": b})
        folded, reimpacted = await cur.fetchone()  # type: ignore[misc]
    return int(folded), list(reimpacted or [])
