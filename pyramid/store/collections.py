"""Collections and the PostgreSQL roles that give access to them.

Access is PostgreSQL's own: a collection has two roles, ``kp_<database>_<id>_read`` and
``kp_<database>_<id>_write`` (created on the first grant), which hold the table privileges; the
row-level security policies of migration 008 let a role see and change the rows of the collections
whose roles it can use. ``grant`` makes a role a member of one of them, ``revoke`` takes that away;
a DBA can do the same with ``GRANT kp_…_read TO alice`` in psql."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CollectionError
from ..models import CollectionInfo, Grant
from ..sqlfiles import query
from .rows import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

# The tables that hold a collection's rows (row-level security narrows them): a writer changes
# them; a reader reads them, the build records and the BM25 statistics views. api_tokens is not
# among them: only the owner reads it.
WRITE_TABLES = (
    "collections",
    "documents",
    "items",
    "item_sources",
    "bm25_postings",
    "bm25_levels",
    "bm25_level_deltas",
    "bm25_terms",
    "bm25_term_deltas",
    "bm25_impact_ref",
    "llm_outputs",
    "distill_usage",
    "learned_recollections",
    "ingest_jobs",
)
READ_TABLES = (
    "pyramid_meta",
    "pyramid_migrations",
    "pyramid_sql_functions",
    *WRITE_TABLES,
    "bm25_level_stats",
    "bm25_term_stats",
)
ACCESS = ("read", "write")


async def list_collections(conn: AsyncConnection[Any]) -> list[CollectionInfo]:
    rows = await fetch_all(conn, query("collections.list"))
    return [
        CollectionInfo(
            id=row["id"],
            name=row["name"],
            documents=int(row["documents"]),
            items=int(row["items"]),
            created_at=row["created_at"],
            grants=[Grant(**g) for g in row["grants"]],
        )
        for row in rows
    ]


async def collection_id(conn: AsyncConnection[Any], name: str) -> int:
    row = await fetch_one(conn, query("collections.by_name"), {"name": name})
    if row is None:
        known = ", ".join(c.name for c in await list_collections(conn)) or "none"
        raise CollectionError(f"there is no collection {name!r} (collections: {known})")
    return int(row["id"])


async def remove_collection(conn: AsyncConnection[Any], name: str) -> CollectionInfo:
    """Remove a collection with everything in it, and its access roles, in one transaction."""
    from psycopg import sql

    if name == "default":
        raise CollectionError(
            "the collection 'default' cannot be removed (`pyramid rm` removes its documents)"
        )
    cid = await collection_id(conn, name)
    info = next(c for c in await list_collections(conn) if c.id == cid)
    async with conn.transaction():
        await conn.execute(query("collections.remove_items"), {"id": cid})
        await conn.execute(query("collections.remove_rest"), {"id": cid})
        for kind in ACCESS:
            row = await fetch_one(conn, query("collections.access_role"), {"id": cid, "kind": kind})
            if row and row["exists"]:
                role = sql.Identifier(row["role"])
                await conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
                await conn.execute(sql.SQL("DROP ROLE {}").format(role))
    return info


async def _access_role(conn: AsyncConnection[Any], cid: int, kind: str) -> str:
    """The collection's access role of this kind, created (with its table privileges) if needed.
    The privileges are granted again each time: a table added by a later migration is covered."""
    from psycopg import sql

    row = await fetch_one(conn, query("collections.access_role"), {"id": cid, "kind": kind})
    assert row is not None
    role = sql.Identifier(row["role"])
    if not row["exists"]:
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
    schema = await fetch_one(conn, query("collections.schema"))
    assert schema is not None
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema["name"]), role))
    tables = sql.SQL(", ").join(sql.Identifier(t) for t in READ_TABLES)
    await conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, role))
    if kind == "write":
        tables = sql.SQL(", ").join(sql.Identifier(t) for t in WRITE_TABLES)
        await conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(tables, role))
        await conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema["name"]), role
            )
        )
    return str(row["role"])


async def grant(conn: AsyncConnection[Any], role: str, collection: str, *, write: bool) -> Grant:
    """Let ``role`` read (or read and write) ``collection``: the role is created (LOGIN, no
    password) if it does not exist, and its access is set to exactly this (a writer granted --read
    becomes a reader)."""
    import psycopg
    from psycopg import sql

    cid = await collection_id(conn, collection)
    kind = "write" if write else "read"
    try:
        async with conn.transaction():
            exists = await fetch_one(conn, query("collections.role_exists"), {"role": role})
            if not (exists and exists["exists"]):
                await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            access = await _access_role(conn, cid, kind)
            await conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(access), sql.Identifier(role)))
            other = "read" if write else "write"
            row = await fetch_one(conn, query("collections.access_role"), {"id": cid, "kind": other})
            if row and row["exists"]:
                await conn.execute(
                    sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(row["role"]), sql.Identifier(role))
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CollectionError(
            f"cannot grant {role!r} access: this connection may not create or grant roles ({exc}); "
            "run it as the database's owner with CREATEROLE"
        ) from exc
    return Grant(role=role, access=kind)


async def revoke(conn: AsyncConnection[Any], role: str, collection: str) -> bool:
    """Take ``role``'s access to ``collection`` away; False when it had none."""
    from psycopg import sql

    cid = await collection_id(conn, collection)
    exists = await fetch_one(conn, query("collections.role_exists"), {"role": role})
    if not (exists and exists["exists"]):
        raise CollectionError(f"there is no role {role!r}")
    had = False
    async with conn.transaction():
        for kind in ACCESS:
            row = await fetch_one(conn, query("collections.access_role"), {"id": cid, "kind": kind})
            if not (row and row["exists"]):
                continue
            member = await fetch_one(
                conn, query("collections.is_member"), {"role": role, "access": row["role"]}
            )
            if member and member["yes"]:
                had = True
                await conn.execute(
                    sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(row["role"]), sql.Identifier(role))
                )
    return had
