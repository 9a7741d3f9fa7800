"""SQL is data, read with importlib.resources so that it ships inside the wheel:

* ``pyramid/sql/migrations/NNN_name.sql``: the schema (tables, indexes, views, triggers), one
  numbered step each, applied once and recorded in ``pyramid_migrations``;
* ``pyramid/sql/functions/<name>.sql``: the SQL functions (BM25, vector, search, ...) as
  ``CREATE OR REPLACE FUNCTION``, re-applied whenever the file's checksum recorded in
  ``pyramid_sql_functions`` differs, so changing a function is an edit of its file;
* ``pyramid/sql/queries/<group>.sql``: named queries, blocks introduced by ``-- name: <query>``.

Migrations and functions may name the constants of :mod:`pyramid.store.schema` as ``{name}``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_FUNCTION = re.compile(r"^([a-z0-9_]+)\.sql$")
_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class FunctionFile:
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def fill(sql: str) -> str:
    """The SQL with the placeholders of :data:`pyramid.store.schema.SQL_CONSTANTS` filled in."""
    # Imported here: pyramid.store imports this module, so a module-level import would be a cycle
    # whenever pyramid.sqlfiles is the first of the two to be imported.
    from .store.schema import SQL_CONSTANTS

    for name, value in SQL_CONSTANTS.items():
        sql = sql.replace("{" + name + "}", value)
    return sql


@cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("pyramid.sql").joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), fill(entry.read_text("utf-8"))))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return tuple(found)


@cache
def functions() -> tuple[FunctionFile, ...]:
    """The function files, by name. Their order does not matter: they are applied with
    ``check_function_bodies`` off (as pg_dump does), so one may call another defined later."""
    found = []
    for entry in resources.files("pyramid.sql").joinpath("functions").iterdir():
        match = _FUNCTION.match(entry.name)
        if match:
            found.append(FunctionFile(match.group(1), fill(entry.read_text("utf-8"))))
    return tuple(sorted(found, key=lambda f: f.name))


@cache
def _group(group: str) -> dict[str, str]:
    text = resources.files("pyramid.sql").joinpath("queries", f"{group}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    """The SQL of a named query, ``"<group>.<name>"`` (e.g. ``"documents.by_source"``)."""
    group, _, key = name.partition(".")
    try:
        return _group(group)[key]
    except (KeyError, FileNotFoundError):
        raise KeyError(f"no SQL query named {name!r}") from None
