"""Session-level advisory locks on the keys of :mod:`pyramid.store.schema`. A session lock belongs
to the connection that took it and dies with it, so a killed process never leaves one held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .rows import fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Key = tuple[int, int]


async def try_lock(conn: AsyncConnection[Any], key: Key, *, shared: bool = False) -> bool:
    """Take the lock if it is free now (``shared``: alongside other shared holders)."""
    function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    row = await fetch_one(conn, f"SELECT {function}(%s, %s) AS got", key)
    return bool(row and row["got"])


async def unlock(conn: AsyncConnection[Any], key: Key, *, shared: bool = False) -> None:
    function = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    await conn.execute(f"SELECT {function}(%s, %s)", key)


@asynccontextmanager
async def held(conn: AsyncConnection[Any], key: Key) -> AsyncIterator[None]:
    """Hold the lock for the block, waiting for it as long as it takes."""
    await conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        yield
    finally:
        await unlock(conn, key)
