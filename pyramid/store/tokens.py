"""API tokens of ``pyramid serve``: each one a PostgreSQL role with access to some collections. Only
the sha256 of a token is stored; the token itself is shown once, when it is made."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CollectionError, NotFoundError
from ..models import ApiToken
from ..sqlfiles import query
from . import collections as access
from .rows import Row, fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

PREFIX = "kp_"  # tokens start with it, so a leaked one is recognisable in logs and scanners


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_session(token_id: int, sha256: str) -> str:
    """A browser session of an API token: its id and an HMAC keyed by the token's hash, which only
    the database holds (a cookie cannot be made without reading the database)."""
    mac = hmac.new(sha256.encode(), b"pyramid-serve-token-session", hashlib.sha256).hexdigest()
    return f"{token_id}.{mac}"


def parse_token_session(value: str) -> tuple[int, str] | None:
    head, _, mac = value.partition(".")
    return (int(head), mac) if head.isdigit() and mac else None


def _token(row: Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        collections=list(row["collections"]),
        write=bool(row["can_write"]),
        created_at=row.get("created_at"),
        last_used_at=row.get("last_used_at"),
    )


async def create(
    conn: AsyncConnection[Any], collections: Sequence[str], *, write: bool = False, name: str = ""
) -> tuple[ApiToken, str]:
    """A new token for ``collections`` (read, or read and write the first of them with ``write``):
    its role is made (NOLOGIN: only the server becomes it) and granted access. Returns the token's
    record and the token itself, which is not stored."""
    from psycopg import sql

    if not collections:
        raise CollectionError("a token needs at least one collection (--collection NAME)")
    for collection in collections:
        await access.collection_id(conn, collection)  # each must exist
    token = PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        row = await fetch_one(
            conn,
            query("tokens.insert"),
            {"name": name, "sha256": digest(token), "collections": list(collections), "write": write},
        )
        assert row is not None
        named = await fetch_one(conn, query("tokens.role_name"), {"id": row["id"]})
        assert named is not None
        role = str(named["role"])
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        for i, collection in enumerate(collections):
            await access.grant(conn, role, collection, write=write and i == 0)
        await conn.execute(query("tokens.set_role"), {"id": row["id"], "role": role})
        found = await fetch_one(conn, query("tokens.by_id"), {"id": row["id"]})
    assert found is not None
    return _token(found), token


async def find(conn: AsyncConnection[Any], token: str) -> ApiToken | None:
    row = await fetch_one(conn, query("tokens.find"), {"sha256": digest(token)})
    return _token(row) if row else None


async def by_id(conn: AsyncConnection[Any], token_id: int) -> tuple[ApiToken, str] | None:
    """The token and its stored hash (what a browser session is checked against)."""
    row = await fetch_one(conn, query("tokens.by_id"), {"id": token_id})
    return (_token(row), str(row["token_sha256"])) if row else None


async def list_tokens(conn: AsyncConnection[Any]) -> list[ApiToken]:
    return [_token(row) for row in await fetch_all(conn, query("tokens.list"))]


async def revoke(conn: AsyncConnection[Any], token_id: int) -> ApiToken:
    """Delete the token and drop its role: the next request that presents it is refused."""
    from psycopg import sql

    async with conn.transaction():
        found = await fetch_one(conn, query("tokens.by_id"), {"id": token_id})
        if found is None:
            raise NotFoundError(f"there is no API token {token_id}")
        await conn.execute(query("tokens.delete"), {"id": token_id})
        role = sql.Identifier(found["role"])
        await conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        await conn.execute(sql.SQL("DROP ROLE {}").format(role))
    return _token(found)
