"""The reads of ``pyramid overview``: documents, their formats and sizes, and the concepts that the
themes are found among. Queries in ``sql/queries/overview.sql``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sqlfiles import query

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]


async def _rows(conn: AsyncConnection[Any], name: str, params: dict[str, Any] | None = None) -> list[Row]:
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(name), params)
        return await cur.fetchall()


async def documents(conn: AsyncConnection[Any]) -> list[Row]:
    return await _rows(conn, "overview.documents")


async def formats(conn: AsyncConnection[Any]) -> list[Row]:
    return await _rows(conn, "overview.formats")


async def concepts(conn: AsyncConnection[Any], *, per_document: int) -> list[Row]:
    return await _rows(conn, "overview.concepts", {"per_document": per_document})
