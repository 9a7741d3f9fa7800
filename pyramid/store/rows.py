"""Rows by column name: every read of the store goes through these, so that a column added to a
query (or moved in it) breaks nothing that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Row = dict[str, Any]
T = TypeVar("T")


async def fetch_all(conn: AsyncConnection[Any], sql: str, params: Any = None) -> list[Row]:
    """Every row (none for a statement that returns no rows, such as an UPDATE without RETURNING)."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall() if cur.description else []


async def fetch_one(conn: AsyncConnection[Any], sql: str, params: Any = None) -> Row | None:
    """The first row, or None when the query returned none."""
    from psycopg.rows import dict_row

    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def fetch_as(conn: AsyncConnection[Any], cls: type[T], sql: str, params: Any = None) -> list[T]:
    """Every row as ``cls(**row)`` (a dataclass whose fields are the query's columns)."""
    from psycopg.rows import class_row

    async with conn.cursor(row_factory=class_row(cls)) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()
