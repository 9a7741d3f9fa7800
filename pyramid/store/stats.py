"""The numbers behind ``pyramid stats``: items per level and distiller, documents per status, and
the token ledger per step and per document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import DocumentUsage, Stats, StepUsage, Usage
from ..sqlfiles import query
from .rows import Row, fetch_all

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def _rows(conn: AsyncConnection, name: str) -> list[Row]:
    return await fetch_all(conn, query(name))


async def read_stats(conn: AsyncConnection) -> Stats:
    result = Stats()
    for row in await _rows(conn, "stats.items_per_level"):
        result.items[row["level"]] = int(row["count"])
        result.stale += int(row["stale"]) if row["level"] == "recollection" else 0
    for row in await _rows(conn, "stats.items_per_distiller"):
        result.distillers.setdefault(row["level"], {})[row["distiller"] or "?"] = int(row["count"])
    for row in await _rows(conn, "stats.documents_per_status"):
        result.documents[row["status"]] = int(row["count"])
    for row in await _rows(conn, "stats.usage_per_step"):
        result.steps.append(
            StepUsage(step=row["step"], model=row["model"], usage=_usage(row), cached=int(row["cached"]))
        )
    by_source: dict[str, DocumentUsage] = {}
    for row in await _rows(conn, "stats.usage_per_document"):
        source = row["source"]
        doc = by_source.setdefault(
            source, DocumentUsage(source=source, document_id=row["document_id"], title=row["title"])
        )
        doc.steps.append(StepUsage(step=row["step"], usage=_usage(row), cached=int(row["cached"])))
        doc.failed = doc.failed or bool(row["failed"])
    result.per_document = list(by_source.values())
    return result


def _usage(row: dict[str, Any]) -> Usage:
    return Usage(
        requests=int(row["requests"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
    )
