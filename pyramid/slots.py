"""A cluster-wide cap on documents talking to the model at once (``llm_concurrency``), counted in
the database rather than per process, so N workers do not multiply the rate against a provider's
limit.

A slot is one of ``llm_concurrency`` advisory-lock keys (``LOCK_LLM_SLOTS`` in store/schema.py),
held on a connection of this process's own for as long as a document talks to the model. A
session lock dies with its connection: a killed worker never keeps a slot."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .store.schema import LOCK_LLM_SLOTS

if TYPE_CHECKING:
    from psycopg import AsyncConnection


class ClusterSlots:
    """``async with slots.hold():`` waits for one of the cluster's ``cap`` slots."""

    def __init__(self, url: str, cap: int, *, poll: float = 0.05) -> None:
        self.url = url
        self.cap = cap
        self.poll = poll
        self._idle: list[AsyncConnection] = []
        self._all: list[AsyncConnection] = []

    async def _connection(self) -> AsyncConnection:
        import psycopg

        if self._idle:
            return self._idle.pop()
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        self._all.append(conn)
        return conn

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[int]:
        conn = await self._connection()
        namespace, base = LOCK_LLM_SLOTS
        try:
            slot = None
            while slot is None:
                for candidate in random.sample(range(self.cap), self.cap):
                    cur = await conn.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (namespace, base + candidate)
                    )
                    (got,) = await cur.fetchone()  # type: ignore[misc]
                    if got:
                        slot = candidate
                        break
                else:
                    await asyncio.sleep(self.poll)
            try:
                yield slot
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (namespace, base + slot))
        finally:
            self._idle.append(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle.clear()
