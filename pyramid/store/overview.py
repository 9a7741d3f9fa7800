"""The reads of ``pyramid overview``: documents, their formats and sizes, and the concepts that the
themes are found among. Queries in ``sql/queries/overview.sql``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from .rows import Row, fetch_all

if TYPE_CHECKING:
    from psycopg import AsyncConnection


async def _rows(conn: AsyncConnection[Any], name: str, params: dict[str, Any] | None = None) -> list[Row]:
    return await fetch_all(conn, query(name), params)


async def documents(conn: AsyncConnection[Any]) -> list[Row]:
    return await _rows(conn, "overview.documents")


async def formats(conn: AsyncConnection[Any]) -> list[Row]:
    return await _rows(conn, "overview.formats")


async def concepts(conn: AsyncConnection[Any], *, per_document: int) -> list[Row]:
    return await _rows(conn, "overview.concepts", {"per_document": per_document})
