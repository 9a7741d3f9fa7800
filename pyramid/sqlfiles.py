"""SQL is data: numbered migrations in ``pyramid/sql/NNN_name.sql`` and named queries in
``pyramid/sql/queries/<group>.sql`` (blocks introduced by ``-- name: <query>``), read with
importlib.resources so they ship inside the wheel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_MIGRATION = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("pyramid.sql").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return tuple(found)


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
