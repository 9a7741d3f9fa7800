"""Reads and writes of documents and items. Every write of a document's content happens inside one
transaction that the caller opens, so a reader sees the old version or the new one, never a mix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..faults import checkpoint
from ..models import DocumentInfo, DocumentStatus, ItemView, Level, Usage
from ..sqlfiles import query
from .rows import Row, fetch_all, fetch_as, fetch_one

if TYPE_CHECKING:
    import numpy as np
    from psycopg import AsyncConnection

ITEM_COPY_TYPES = [
    "bigint",
    "bigint",
    "text",
    "integer",
    "text",
    "text",
    "integer[]",
    "vector",
    "text",
    "text",
    "boolean",
    "jsonb",
]
SOURCE_COPY_TYPES = ["bigint", "bigint", "bigint", "text"]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedded_text(level: str, title: str | None, text: str) -> str:
    """The text of an item that its vector is computed from: a concept is embedded with its name
    (``name: description``), every other item as its text. Ingest, both distillers and ``reembed``
    all embed through this, so a re-embed with the same model gives the vectors a fresh ingest does."""
    if level == "concept" and title:
        return f"{title}: {text}"
    return text


@dataclass
class NewItem:
    """An item to write. ``key`` names it within one write batch so that other items of the same
    batch can list it in ``sources``; a source may also be the id (int) of an item already stored."""

    key: str
    level: Level
    text: str
    ordinal: int = 0
    pages: list[int] = field(default_factory=list)
    embedding: np.ndarray | None = None
    title: str | None = None
    content_hash: str | None = None
    distiller: str | None = None
    stale: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    sources: list[str | int] = field(default_factory=list)
    source_documents: list[int] = field(default_factory=list)
    source_refs: dict[str | int, str] = field(default_factory=dict)
    # Set when the item is already stored unchanged: it is kept (not rewritten) and other items of
    # the batch can still name it by key.
    existing_id: int | None = None

    @property
    def embedded_text(self) -> str:
        return embedded_text(self.level, self.title, self.text)


@dataclass
class DocumentRecord:
    """The documents row of a version being stored."""

    source: str
    path: str
    file_sha256: str | None
    sha256: str | None
    title: str
    format: str
    page_count: int
    paged: bool
    status: DocumentStatus
    error: str | None = None
    distiller: str | None = None
    usage: Usage = field(default_factory=Usage)
    meta: dict[str, Any] = field(default_factory=dict)
    file_size: int | None = None
    file_mtime: float | None = None

    def params(self) -> dict[str, Any]:
        from psycopg.types.json import Jsonb

        return {
            "source": self.source,
            "path": self.path,
            "file_sha256": self.file_sha256,
            "sha256": self.sha256,
            "title": self.title,
            "format": self.format,
            "page_count": self.page_count,
            "paged": self.paged,
            "status": self.status,
            "error": self.error,
            "distiller": self.distiller,
            "usage": Jsonb(self.usage.model_dump()),
            "meta": Jsonb(self.meta),
            "file_size": self.file_size,
            "file_mtime": self.file_mtime,
        }


# --- writes -----------------------------------------------------------------------------------------


async def upsert_document(conn: AsyncConnection, record: DocumentRecord) -> tuple[int, bool]:
    """Insert or update the documents row (row-locked); returns (id, existed)."""
    row = await fetch_one(conn, query("documents.lock_source"), {"source": record.source})
    if row is None:
        inserted = await fetch_one(conn, query("documents.insert"), record.params())
        assert inserted is not None  # INSERT … RETURNING id
        return int(inserted["id"]), False
    await conn.execute(query("documents.update"), {**record.params(), "id": row["id"]})
    return int(row["id"]), True


async def delete_items(
    conn: AsyncConnection, document_id: int, levels: Sequence[Level] | None = None
) -> None:
    await conn.execute(
        query("items.delete_for_document"),
        {"document_id": document_id, "levels": list(levels) if levels is not None else None},
    )


async def write_items(
    conn: AsyncConnection, document_id: int | None, items: Sequence[NewItem]
) -> dict[str, int]:
    """COPY items (and their provenance) in; returns key → item id (new ids, and the ids of items
    that carry ``existing_id`` and are kept as they are)."""
    from psycopg.types.json import Jsonb

    if not items:
        return {}
    if len({item.key for item in items}) != len(items):
        raise ValueError("item keys must be unique within a write")
    by_key = {item.key: item.existing_id for item in items if item.existing_id is not None}
    kept = {item.key for item in items if item.existing_id is not None}
    await _update_kept(conn, [item for item in items if item.existing_id is not None])
    items = [item for item in items if item.existing_id is None]
    if not items:
        return by_key
    ids = [row["id"] for row in await fetch_all(conn, query("items.reserve_ids"), {"n": len(items)})]
    by_key.update({item.key: item_id for item, item_id in zip(items, ids, strict=True)})
    assert not kept & {item.key for item in items}
    staged = await _staged(conn)
    cur_copy = conn.cursor()
    async with cur_copy.copy(query("items.copy_staged" if staged else "items.copy")) as copy:
        copy.set_types(ITEM_COPY_TYPES)
        for item, item_id in zip(items, ids, strict=True):
            await copy.write_row(
                (
                    item_id,
                    document_id,
                    item.level,
                    item.ordinal,
                    item.title,
                    item.text,
                    item.pages,
                    item.embedding,
                    item.content_hash or text_hash(item.text),
                    item.distiller,
                    item.stale,
                    Jsonb(item.meta),
                )
            )
    # (item, source item or None, source document or None, reference)
    links: list[tuple[int, int | None, int | None, str]] = []
    for item in items:
        own = by_key[item.key]
        for source in item.sources:
            source_id = by_key[source] if isinstance(source, str) else int(source)
            links.append((own, source_id, None, item.source_refs.get(source, "")))
        for doc in item.source_documents:
            links.append((own, None, doc, item.source_refs.get(doc, "")))
    if staged:
        await conn.execute(query("items.insert_staged"))
    if links:
        async with cur_copy.copy(
            query("items.copy_sources_staged" if staged else "items.copy_sources")
        ) as copy:
            copy.set_types(SOURCE_COPY_TYPES)
            for link in links:
                await copy.write_row(link)
        if staged:
            await conn.execute(query("items.insert_sources_staged"))
    return by_key


async def _staged(conn: AsyncConnection) -> bool:
    """Whether this session must stage its COPY (row-level security applies to it); the temporary
    tables are made then, once per connection."""
    row = await fetch_one(conn, query("items.rls_active"))
    if not (row and row["active"]):
        return False
    await conn.execute(query("items.stage"))
    return True


async def _update_kept(conn: AsyncConnection, kept: Sequence[NewItem]) -> None:
    """A kept item takes the position and meta of the new version: an insight added early in a
    re-distilled document shifts the ordinals of the untouched ones after it, and they must keep
    their ids (provenance from recollections points at them) without being rewritten or re-embedded."""
    from psycopg.types.json import Jsonb

    if not kept:
        return
    await conn.execute(
        query("items.update_kept"),
        {
            "ids": [item.existing_id for item in kept],
            "ordinals": [item.ordinal for item in kept],
            "metas": [Jsonb(item.meta) for item in kept],
            # unnest cannot take a ragged int[][]: each page list travels as "3,4"
            "pages": [",".join(str(p) for p in item.pages) for item in kept],
        },
    )


async def replace_document(
    conn: AsyncConnection,
    record: DocumentRecord,
    items: Sequence[NewItem],
    *,
    levels: Sequence[Level] | None = None,
) -> tuple[int, bool, dict[str, int]]:
    """Store a document version: its row, and its items of ``levels`` (all levels when None)
    replaced by ``items``; items with ``existing_id`` are kept untouched. Must run inside the
    caller's transaction."""
    doc_id, existed = await upsert_document(conn, record)
    if existed:
        keep = [item.existing_id for item in items if item.existing_id is not None]
        await conn.execute(
            query("items.delete_for_document_except"),
            {"document_id": doc_id, "keep": keep, "levels": list(levels) if levels is not None else None},
        )
    checkpoint("document.old-items-deleted")
    keys = await write_items(conn, doc_id, items)
    return doc_id, existed, keys


async def record_failure(
    conn: AsyncConnection, *, source: str, path: str, file_sha256: str | None, error: str, title: str = ""
) -> None:
    """Mark a document failed without touching what is stored for it."""
    marked = await fetch_one(
        conn, query("documents.mark_failed"), {"source": source, "error": error, "file_sha256": file_sha256}
    )
    if marked is None:
        await conn.execute(
            query("documents.insert_failed"),
            {"source": source, "path": path, "file_sha256": file_sha256, "error": error, "title": title},
        )


async def delete_documents(conn: AsyncConnection, ids: Sequence[int]) -> list[str]:
    """Delete documents with everything built on them, and note (in the same transaction) that the
    corpus changed, so the recollection step runs even if this process dies right after."""
    removed = [row["source"] for row in await fetch_all(conn, query("documents.delete"), {"ids": list(ids)})]
    checkpoint("documents.deleted-before-commit")
    if removed:
        await conn.execute(query("documents.corpus_changed"))
    return removed


async def corpus_pending(conn: AsyncConnection) -> tuple[list[int], bool]:
    """The documents waiting for the corpus step, and whether documents were removed since."""
    pending = [int(row["id"]) for row in await fetch_all(conn, query("documents.pending_corpus"))]
    flag = await fetch_one(conn, query("documents.corpus_flag"))
    return pending, bool(flag and flag["changed"])


async def corpus_done(conn: AsyncConnection, ids: Sequence[int]) -> None:
    await conn.execute(query("documents.corpus_done"), {"ids": list(ids)})


# --- reads ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFileState:
    id: int
    source: str
    file_sha256: str | None
    sha256: str | None
    status: str


def _like_prefix(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


async def documents_under(conn: AsyncConnection, root: str) -> list[tuple[int, str, str]]:
    """(id, source, path) of the documents whose file is ``root`` or lies below that folder."""
    rows = await fetch_all(conn, query("documents.under_root"), {"root": root, "prefix": _like_prefix(root)})
    return [(row["id"], row["source"], row["path"]) for row in rows]


async def touch_file_hash(conn: AsyncConnection, document_id: int, file_sha256: str) -> None:
    """Record the hash of a file whose content is stored unchanged (only its bytes changed)."""
    await conn.execute(query("documents.touch_file_hash"), {"id": document_id, "file_sha256": file_sha256})


async def documents_of_paths(conn: AsyncConnection, paths: Sequence[str]) -> dict[str, list[StoredFileState]]:
    """The documents stored from each of ``paths`` (a feed file holds several): path → states;
    a path with none is absent."""
    found: dict[str, list[StoredFileState]] = {}
    for row in await fetch_all(conn, query("documents.by_paths"), {"paths": list(paths)}):
        state = StoredFileState(
            id=row["id"],
            source=row["source"],
            file_sha256=row["file_sha256"],
            sha256=row["sha256"],
            status=row["status"],
        )
        found.setdefault(row["path"], []).append(state)
    return found


def _document_info(row: Row) -> DocumentInfo:
    return DocumentInfo(
        id=row["id"],
        source=row["source"],
        path=row["path"],
        title=row["title"],
        format=row["format"],
        pages=row["page_count"],
        status=row["status"],
        error=row["error"],
        distiller=row["distiller"],
        sha256=row["sha256"],
        ingested_at=row["ingested_at"],
        updated_at=row["updated_at"],
        usage=Usage.model_validate(row["usage"] or {}),
        items=dict(row["items"] or {}),
    )


@dataclass(frozen=True)
class StoredPage:
    id: int
    ordinal: int
    content_hash: str | None


async def stored_pages(conn: AsyncConnection, document_id: int) -> list[StoredPage]:
    return await fetch_as(conn, StoredPage, query("items.page_hashes"), {"document_id": document_id})


async def list_documents(conn: AsyncConnection, *, status: str | None = None) -> list[DocumentInfo]:
    rows = await fetch_all(conn, query("documents.list"), {"status": status, "id": None})
    return [_document_info(row) for row in rows]


async def get_document(conn: AsyncConnection, document_id: int) -> DocumentInfo:
    row = await fetch_one(conn, query("documents.list"), {"status": None, "id": document_id})
    if row is None:
        raise NotFoundError(f"no document with id {document_id}")
    return _document_info(row)


async def resolve_document(conn: AsyncConnection, ref: str | int) -> int:
    """The id of the one document a user named: an id, a source, a path, or a unique file-name
    suffix. A feed file names several documents (one per item): that is an error here that lists
    them; ``resolve_documents`` takes every one."""
    ids = await resolve_documents(conn, ref)
    if len(ids) > 1:
        shown = ", ".join(str(i) for i in ids[:8]) + (", …" if len(ids) > 8 else "")
        raise NotFoundError(
            f"{str(ref).strip()!r} holds {len(ids)} documents (one per feed item: ids {shown}); "
            "name one by id or by its source"
        )
    return ids[0]


async def resolve_documents(conn: AsyncConnection, ref: str | int) -> list[int]:
    """The ids of the documents a user named: one for an id, a source or a unique file name; every
    item of a feed for the feed's file (``news.rss``, its path, or a path relative to here)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        doc_id = int(ref)
        await get_document(conn, doc_id)
        return [doc_id]
    text = str(ref).strip()
    candidates = [text]
    local = Path(text).expanduser()
    if local.exists():
        candidates.insert(0, str(local.resolve()))
    for candidate in candidates:
        suffix = candidate.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").lstrip("/")
        exact = await fetch_all(conn, query("documents.exact"), {"ref": candidate})
        if len(exact) == 1:
            return [int(exact[0]["id"])]
        # One row per file: its path and the ids of its documents.
        files = await fetch_all(conn, query("documents.find"), {"ref": candidate, "suffix": suffix})
        if len(files) == 1:  # one document, or the items of one feed
            return [int(i) for i in files[0]["ids"]]
        if len(files) > 1:
            if files[0]["path"] == candidate:  # the full path of one file, and others ending like it
                return [int(i) for i in files[0]["ids"]]
            names = ", ".join(str(file["ids"][0]) for file in files[:5])
            raise NotFoundError(
                f"{text!r} matches several documents (ids {names}); name it by id or full path"
            )
    raise NotFoundError(f"no document matches {text!r} (see `pyramid ls`)")


async def document_items(
    conn: AsyncConnection, document_id: int, *, levels: Sequence[Level] | None = None
) -> list[ItemView]:
    rows = await fetch_all(
        conn,
        query("items.for_document"),
        {"document_id": document_id, "levels": list(levels) if levels is not None else None},
    )
    return [_item_view(row) for row in rows]


async def document_recollections(conn: AsyncConnection, document_id: int) -> list[ItemView]:
    rows = await fetch_all(conn, query("items.recollections_for_document"), {"document_id": document_id})
    return [_item_view(row) for row in rows]


def _item_view(row: Row) -> ItemView:
    return ItemView(
        id=row["id"],
        level=row["level"],
        ordinal=row["ordinal"],
        title=row["title"],
        text=row["text"],
        pages=list(row["pages"] or []),
        distiller=row["distiller"],
        stale=row["stale"],
        sources=[int(s) for s in (row["sources"] or [])],
    )


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
