"""What the Python code and the SQL must agree on, defined once: the advisory-lock keys and the
list of levels. The SQL files name them as placeholders (``{lock_impacts}``, ``{levels}``) that
:mod:`pyramid.sqlfiles` fills in from here before a file is applied, so a function's recorded
checksum, and with it the function, changes whenever one of these values does."""

from __future__ import annotations

from ..models import LEVELS

# Advisory lock keys: (namespace, key) pairs, the namespace being "pyra" in ASCII. Every lock the
# project takes, from Python or from SQL, is listed here so that two never share a key by accident.
LOCK_NAMESPACE = 0x70797261
LOCK_MIGRATE = (LOCK_NAMESPACE, 1)  # migrations and SQL functions are applied by one process at a time
LOCK_WRITER = (LOCK_NAMESPACE, 2)  # the single writer (ingest, sync, reembed)
LOCK_IMPACTS = (LOCK_NAMESPACE, 3)  # stored BM25 impacts: writers shared, a re-impacting compaction exclusive
LOCK_COMPACT = (LOCK_NAMESPACE, 4)  # one BM25 compaction at a time
LOCK_LEARN = (LOCK_NAMESPACE, 5)  # one learned finding written at a time (ask --learn, verify)
LOCK_CORPUS = (LOCK_NAMESPACE, 6)  # one corpus step at a time (the worker that drains the queue)
# Work on one collection locks (LOCK_COLLECTION_BASE + the lock's key, collection id): ingests,
# compactions, corpus steps and learning of two collections never wait on each other. LOCK_WRITER,
# LOCK_COMPACT, LOCK_LEARN and LOCK_CORPUS are taken per collection (for_collection).
LOCK_COLLECTION_BASE = 0x70790000
# The cluster's LLM slots (llm_concurrency): keys 1000 … 1000 + llm_concurrency - 1 (at most 512).
LOCK_LLM_SLOTS = (LOCK_NAMESPACE, 1000)


def for_collection(lock: tuple[int, int], collection_id: int) -> tuple[int, int]:
    """The per-collection key of one of the locks above."""
    return (LOCK_COLLECTION_BASE + lock[1], collection_id)


def _sql_text_array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _lock(key: tuple[int, int]) -> str:
    return f"{key[0]}, {key[1]}"


# Placeholders the SQL files may use, and their SQL text. ({embedding_dim} is filled in by the
# migration runner: it depends on the database, not on this module.)
SQL_CONSTANTS: dict[str, str] = {
    "levels": _sql_text_array(LEVELS),
    "lock_impacts": _lock(LOCK_IMPACTS),
    "lock_compact_ns": str(LOCK_COLLECTION_BASE + LOCK_COMPACT[1]),
}
