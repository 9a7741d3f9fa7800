"""Reading recollections of every kind (distilled, user, learned) with their status and audit trail:
``pyramid recollections`` and ``pyramid show recollection:N``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError
from .models import RecollectionSource, RecollectionView

if TYPE_CHECKING:
    from .runtime import Runtime

KINDS = ("distilled", "user", "learned")


def _source(row: dict[str, Any]) -> RecollectionSource:
    return RecollectionSource(
        item_id=row["source_item_id"],
        level=row["level"],
        text=row["text"],
        pages=list(row["pages"] or []),
        document_id=row["document_id"],
        document=row["title"],
        source=row["source"],
        ref=row["source_ref"] or "",
    )


async def recollections(
    rt: Runtime,
    *,
    kinds: Sequence[str] | None = None,
    stale: bool = False,
    all: bool = False,
    item: int | None = None,
) -> list[RecollectionView]:
    """Recollections in id order with their sources and history; ``kinds`` any of distilled, user,
    learned; ``stale``: only stale ones; ``all``: retired ones too."""
    from .store import learned

    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise NotFoundError(f"unknown recollection kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    async with rt.db.connection() as conn:
        rows = await learned.listing(
            conn, item=item, kinds=kinds, stale=stale, retired=all or item is not None
        )
        trails = await learned.sources(conn, [row["id"] for row in rows])
    return [
        RecollectionView(
            id=row["id"],
            kind=row["kind"],
            status=row["status"],
            text=row["text"],
            distiller=row["distiller"],
            question=row["question"],
            model=row["model"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            verified_at=row["verified_at"],
            sources=[_source(s) for s in trails.get(row["id"], [])],
            history=list(row["history"] or []),
        )
        for row in rows
    ]


async def recollection(rt: Runtime, item: int) -> RecollectionView:
    found = await recollections(rt, item=item)
    if not found:
        raise NotFoundError(f"no recollection with id {item} (see `pyramid recollections --all`)")
    return found[0]
