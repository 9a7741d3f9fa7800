"""The corpus level: the concepts of all documents as the recollection steps see them, and the
recollections built on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from .rows import Row, fetch_all

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def _rows(conn: AsyncConnection, name: str, params: dict[str, Any] | None = None) -> list[Row]:
    return await fetch_all(conn, query(name), params)


@dataclass
class CorpusConcept:
    """A stored concept as the recollection steps see it."""

    id: int
    document_id: int
    name: str
    text: str
    document: str  # its document's title, or file name
    source: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CorpusConcept:
        """From a row with id, document_id, title, text, document_title, source."""
        source = str(row["source"])
        return cls(
            int(row["id"]),
            int(row["document_id"]),
            str(row["title"] or ""),
            str(row["text"]),
            str(row["document_title"] or source.rsplit("/", 1)[-1]),
            source,
        )

    @property
    def ref(self) -> str:
        """The readable trail kept with a recollection's link (it survives the concept's deletion)."""
        return f"{self.name} — {self.document} ({self.source})"


async def concepts(
    conn: AsyncConnection, document_ids: Sequence[int] | None = None
) -> list[tuple[CorpusConcept, Any]]:
    """(concept, its embedding) of the given documents in reading order, or of every document
    (embedded concepts only) in id order."""
    if document_ids is None:
        rows = await _rows(conn, "distill.all_concepts")
    else:
        rows = await _rows(conn, "distill.concepts_of_documents", {"ids": list(document_ids)})
    return [(CorpusConcept.from_row(row), row["embedding"]) for row in rows]


async def abstracts(conn: AsyncConnection, document_ids: Sequence[int]) -> dict[int, str]:
    rows = await _rows(conn, "distill.abstracts_of_documents", {"ids": list(document_ids)})
    return {row["document_id"]: row["text"] for row in rows}


async def related_concepts(
    conn: AsyncConnection, concept_ids: Sequence[int], *, exclude: Sequence[int], per_concept: int
) -> dict[int, list[CorpusConcept]]:
    """For each concept, the ``per_concept`` nearest concepts of documents not in ``exclude``,
    nearest first (one query for them all)."""
    rows = await _rows(
        conn,
        "distill.related_concepts",
        {"concepts": list(concept_ids), "exclude": list(exclude), "limit": per_concept},
    )
    nearest: dict[int, list[CorpusConcept]] = {}
    for row in rows:
        nearest.setdefault(row["concept_id"], []).append(CorpusConcept.from_row(row))
    return nearest


async def recollections_about(
    conn: AsyncConnection, concept_ids: Sequence[int], *, limit: int
) -> list[tuple[int, str]]:
    """(id, text) of the model-made recollections resting on any of these concepts, and of the
    stale ones waiting for a refresh."""
    rows = await _rows(conn, "distill.recollections_about", {"concepts": list(concept_ids), "limit": limit})
    return [(row["id"], row["text"]) for row in rows]


async def recollections_by(conn: AsyncConnection, distiller: str) -> list[dict[str, Any]]:
    """id, text, stale and sources (concept ids) of the recollections one distiller made."""
    return await _rows(conn, "distill.recollections_by", {"distiller": distiller})


async def recollection_trails(
    conn: AsyncConnection, ids: Sequence[int]
) -> dict[int, tuple[str, tuple[str, ...]]]:
    """id → (text, the sorted readable trails of its sources) of these recollections."""
    rows = await _rows(conn, "distill.recollection_trails", {"ids": list(ids)})
    return {row["id"]: (row["text"], tuple(row["refs"])) for row in rows}


async def keep_recollection(conn: AsyncConnection, item_id: int, concepts: Sequence[CorpusConcept]) -> None:
    """Point a recollection that did not change at its concepts as stored now (their ids change when
    a document is stored again) and clear its stale mark: its id, and every citation of it, stays."""
    import json

    await conn.execute(query("distill.unlink_recollection"), {"id": item_id})
    async with conn.cursor() as cur:
        await cur.executemany(
            query("distill.link_recollection"),
            [{"id": item_id, "source": c.id, "ref": c.ref} for c in concepts],
        )
    documents = sorted({c.document_id for c in concepts})
    await conn.execute(
        query("distill.keep_recollection"), {"id": item_id, "documents": json.dumps(documents)}
    )


async def next_recollection_ordinal(conn: AsyncConnection) -> int:
    (row,) = await _rows(conn, "distill.next_recollection_ordinal")
    return int(row["ordinal"])


async def document_names(conn: AsyncConnection, document_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(source, title or source) of each document."""
    rows = await _rows(conn, "distill.document_sources", {"ids": list(document_ids)})
    return {row["id"]: (row["source"], row["title"]) for row in rows}


async def sources_of(conn: AsyncConnection, document_ids: Sequence[int]) -> list[str]:
    return [row["source"] for row in await _rows(conn, "distill.sources_of", {"ids": list(document_ids)})]


async def delete_items(conn: AsyncConnection, ids: Sequence[int]) -> None:
    await conn.execute(query("items.delete_ids"), {"ids": list(ids)})
