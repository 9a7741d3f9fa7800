"""The ingest queue's SQL (table ``ingest_jobs``, migration 007): enqueue, claim under a lease,
heartbeat, hold inside a document's write transaction, complete, fail, list and retry.

Plain SQL rather than a queue library: a job is marked done in the very transaction that writes its
document (and only after checking, in that transaction, that the worker still holds the lease), so
the queue must run on the connection the document write uses. PgQueuer and Procrastinate each manage
their own connections and acknowledge a job in their own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..sqlfiles import query
from .rows import Row, fetch_all, fetch_as

if TYPE_CHECKING:
    from psycopg import AsyncConnection

JOB_STATUSES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class Claimed:
    id: int
    source: str
    sha256: str
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class JobRow:
    id: int
    source: str
    sha256: str
    size: int
    status: str
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires: datetime | None
    heartbeat_at: datetime | None
    last_error: str | None
    results: list[dict[str, Any]]
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


async def _rows(conn: AsyncConnection, name: str, params: dict[str, Any]) -> list[Row]:
    return await fetch_all(conn, query(name), params)


async def enqueue(
    conn: AsyncConnection, files: Sequence[tuple[str, str, int]], *, max_attempts: int
) -> tuple[int, int]:
    """Queue (source, sha256, size) jobs; returns (new jobs, done jobs queued again). A job that is
    already queued, running or failed for the same (source, sha256) is left as it is."""
    if not files:
        return 0, 0
    rows = await _rows(
        conn,
        "jobs.enqueue",
        {
            "sources": [f[0] for f in files],
            "shas": [f[1] for f in files],
            "sizes": [f[2] for f in files],
            "max_attempts": max_attempts,
        },
    )
    new = sum(1 for row in rows if row["inserted"])
    return new, len(rows) - new


async def ids_of(conn: AsyncConnection, files: Sequence[tuple[str, str]]) -> list[int]:
    """The ids of the jobs of these (source, sha256) pairs."""
    rows = await _rows(conn, "jobs.ids_of", {"sources": [f[0] for f in files], "shas": [f[1] for f in files]})
    return [int(row["id"]) for row in rows]


async def claim(conn: AsyncConnection, *, owner: str, lease: float, limit: int = 1) -> list[Claimed]:
    """Claim up to ``limit`` jobs for ``owner`` under a lease of ``lease`` seconds (first failing
    the jobs whose lease expired on their last allowed attempt)."""
    async with conn.transaction():
        await conn.execute(query("jobs.expire"))
        rows = await _rows(conn, "jobs.claim", {"owner": owner, "lease": lease, "limit": limit})
    return [
        Claimed(row["id"], row["source"], row["sha256"], row["attempts"], row["max_attempts"]) for row in rows
    ]


async def heartbeat(conn: AsyncConnection, ids: Sequence[int], *, owner: str, lease: float) -> set[int]:
    """Renew the leases; returns the ids still held."""
    rows = await _rows(conn, "jobs.heartbeat", {"ids": list(ids), "owner": owner, "lease": lease})
    return {int(row["id"]) for row in rows}


async def hold(conn: AsyncConnection, job_id: int, *, owner: str) -> bool:
    """Inside a write transaction: whether ``owner`` still holds the job (row-locked until commit)."""
    return bool(await _rows(conn, "jobs.hold", {"id": job_id, "owner": owner}))


async def complete(conn: AsyncConnection, job_id: int, *, owner: str) -> bool:
    return bool(await _rows(conn, "jobs.complete", {"id": job_id, "owner": owner}))


async def set_results(
    conn: AsyncConnection, job_id: int, results: list[dict[str, Any]], *, owner: str
) -> None:
    from psycopg.types.json import Jsonb

    await conn.execute(query("jobs.set_results"), {"id": job_id, "owner": owner, "results": Jsonb(results)})


async def fail(
    conn: AsyncConnection,
    job_id: int,
    *,
    owner: str,
    error: str,
    delay: float,
    results: list[dict[str, Any]] | None = None,
) -> str | None:
    """Record a failed attempt: the job's new status ('queued' again, or 'failed' after its last
    attempt), None when the owner no longer held it."""
    from psycopg.types.json import Jsonb

    rows = await _rows(
        conn,
        "jobs.fail",
        {"id": job_id, "owner": owner, "error": error, "delay": delay, "results": Jsonb(results or [])},
    )
    return str(rows[0]["status"]) if rows else None


async def counts(conn: AsyncConnection, ids: Sequence[int] | None = None) -> dict[str, int]:
    """Jobs per status (of ``ids``, or of all jobs); every status is present."""
    rows = await _rows(conn, "jobs.counts", {"ids": list(ids) if ids is not None else None})
    found = dict.fromkeys(JOB_STATUSES, 0)
    found.update({row["status"]: int(row["n"]) for row in rows})
    return found


async def list_jobs(
    conn: AsyncConnection, *, status: str | None = None, ids: Sequence[int] | None = None
) -> list[JobRow]:
    params = {"status": status, "ids": list(ids) if ids is not None else None}
    return await fetch_as(conn, JobRow, query("jobs.list"), params)


async def retry(conn: AsyncConnection, ids: Sequence[int] | None = None) -> list[int]:
    """Queue failed jobs again (all, or those of ``ids``) with their attempts reset."""
    rows = await _rows(conn, "jobs.retry", {"ids": list(ids) if ids is not None else None})
    return [int(row["id"]) for row in rows]
