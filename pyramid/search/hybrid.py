"""Hybrid search: BM25 and vector legs per level, fused, optionally reranked by a cross-encoder.

The ranking itself is the SQL function ``pyramid_search`` (``pyramid/sql/functions/search.sql``), so a
psql user and this module get the same answer; here the query is checked, embedded, handed over as
named arguments (``pyramid.store.retrieval``), and the rows become ``Hit`` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from ..config import Fusion, SearchMode
from ..errors import SearchError
from ..models import LEVELS, Hit, Level
from .rerank import resolve_reranker

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..store.database import Database

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
            chosen.append(name)
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
    if reranker:  # before the search: a reranker that is not there fails at once, in one line
        import asyncio

        from .rerank import locate_reranker

        await asyncio.to_thread(locate_reranker, reranker)
    fetch = max(k, settings.rerank_top) if reranker else k
    embedding = None
    if mode != "bm25":
        rt.stage("encoding the query" if rt.embedder.loaded else "loading the encoder")
        embedding = (await rt.embedder.aencode_queries([text]))[0]
    rt.stage("searching")
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

        rt.stage("reranking")
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

    from ..store import retrieval

    levels = list(params["levels"] or LEVELS)
    if parallel < 2 or len(levels) < 2:
        groups = [params["levels"]]
    else:
        groups = [[level] for level in levels]
    limit = asyncio.Semaphore(max(1, parallel))

    async def one(chosen: list[str] | None) -> list[dict[str, Any]]:
        async with limit, db.connection() as conn:
            return await retrieval.search(conn, {**params, "levels": chosen})

    results = await asyncio.gather(*(one(group) for group in groups))
    if len(results) == 1:
        return [_hit(row) for row in results[0]]
    # The SQL function's final order: fused score, then similarity (rows without one last), then id.
    rows = sorted(
        (row for rows in results for row in rows),
        key=lambda r: (-r["fused"], r["similarity"] is None, -(r["similarity"] or 0.0), r["id"]),
    )[: params["k"]]
    return [_hit({**row, "rank": rank}) for rank, row in enumerate(rows, start=1)]


def _hit(row: dict[str, Any]) -> Hit:
    return Hit(
        **{name: row[name] for name in _HIT_COLUMNS},
        pages=list(row["pages"] or []),
        vector=row["similarity"],
    )


_HIT_COLUMNS = (
    "rank",
    "id",
    "level",
    "text",
    "title",
    "document_id",
    "source",
    "path",
    "document_title",
    "stale",
    "fused",
    "bm25",
    "bm25_rank",
    "vector_rank",
)


async def compact(db: Database, *, k1: float = 1.2, b: float = 0.75) -> tuple[int, list[str]]:
    """Fold BM25 statistics deltas into the compacted tables (safe at any time, from any process);
    returns the delta rows folded and the levels whose stored impacts were recomputed."""
    from ..store import retrieval

    async with db.connection() as conn:
        return await retrieval.compact(conn, k1=k1, b=b)
