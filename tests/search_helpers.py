"""Helpers of the search tests: synthetic text, storing documents, and BM25 recomputed from scratch
in Python over the lexemes of the database's own to_tsvector."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

WORDS = (
    "river bank money loan interest rate market price stock bond city road bridge tower king queen "
    "castle war peace treaty farmer harvest wheat bread oven baker school teacher student lesson "
    "doctor hospital fever medicine engine motor wheel train station ticket garden flower seed "
    "winter summer storm rain cloud mountain valley forest wolf deer hunter arrow"
).split()
STOP = "the a of and to in is was for on with as by at".split()


def sentence(rng: random.Random, length: int) -> str:
    """Words drawn with Zipfian frequencies (rank r has weight 1/r), with stop-words mixed in, so a
    few terms are in most items (long postings lists) and most are rare."""
    weights = [1 / (r + 1) for r in range(len(WORDS))]
    words = []
    for _ in range(length):
        if rng.random() < 0.3:
            words.append(rng.choice(STOP))
        else:
            words.append(rng.choices(WORDS, weights)[0])
    return " ".join(words).capitalize() + "."


@dataclass
class Reference:
    """BM25 statistics recomputed from the items table alone."""

    n: dict[str, int]
    total_dl: dict[str, int]
    df: dict[tuple[str, str], int]
    tf: dict[int, dict[str, int]]
    level: dict[int, str]
    doc: dict[int, int | None]

    def avgdl(self, level: str) -> float:
        return self.total_dl[level] / self.n[level]

    def scores(
        self, lexemes: dict[str, int], level: str, *, k1: float = 1.2, b: float = 0.75
    ) -> dict[int, float]:
        """Okapi BM25 of every item of ``level`` that contains a query lexeme."""
        n, avgdl = self.n[level], self.avgdl(level)
        out: dict[int, float] = defaultdict(float)
        for item, tfs in self.tf.items():
            if self.level[item] != level:
                continue
            dl = sum(tfs.values())
            for lexeme, qtf in lexemes.items():
                tf = tfs.get(lexeme, 0)
                if not tf:
                    continue
                df = self.df[(level, lexeme)]
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                out[item] += qtf * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
        return dict(out)


def reference(conn: psycopg.Connection[Any]) -> Reference:
    rows = conn.execute(
        "SELECT i.id, i.level, i.document_id, u.lexeme, cardinality(u.positions)"
        " FROM items i LEFT JOIN LATERAL unnest(to_tsvector(pyramid_ts_config(), i.text))"
        " AS u(lexeme, positions, weights) ON true"
    ).fetchall()
    ref = Reference(Counter(), Counter(), Counter(), defaultdict(dict), {}, {})
    for item, level, doc, lexeme, tf in rows:
        if item not in ref.level:
            ref.level[item] = level
            ref.doc[item] = doc
            ref.n[level] += 1
        if lexeme is not None:
            ref.tf[item][lexeme] = tf
            ref.total_dl[level] += tf
            ref.df[(level, lexeme)] += 1
    return ref


def maintained(
    conn: psycopg.Connection[Any],
) -> tuple[dict[str, tuple[int, int]], dict[tuple[str, str], int]]:
    """Level and term statistics as the triggers keep them (compacted + deltas)."""
    levels = {
        lvl: (n, dl)
        for lvl, n, dl in conn.execute("SELECT level, items, total_dl FROM bm25_level_stats")
        if n != 0 or dl != 0
    }
    terms = {(lvl, lex): df for lvl, lex, df in conn.execute("SELECT level, lexeme, df FROM bm25_term_stats")}
    return levels, terms


def assert_statistics_exact(conn: psycopg.Connection[Any]) -> None:
    """Statistics and postings equal a recomputation from the items alone."""
    ref = reference(conn)
    levels, terms = maintained(conn)
    assert levels == {lvl: (ref.n[lvl], ref.total_dl[lvl]) for lvl in ref.n}
    assert terms == dict(ref.df)
    postings = {
        (item, lexeme): (tf, dl, level, doc)
        for item, lexeme, tf, dl, level, doc in conn.execute(
            "SELECT item_id, lexeme, tf, dl, level, document_id FROM bm25_postings"
        )
    }
    expected = {
        (item, lexeme): (tf, sum(tfs.values()), ref.level[item], ref.doc[item])
        for item, tfs in ref.tf.items()
        for lexeme, tf in tfs.items()
    }
    assert postings == expected


def query_lexemes(conn: psycopg.Connection[Any], query: str) -> dict[str, int]:
    return dict(conn.execute("SELECT lexeme, qtf FROM pyramid_query_lexemes(%s)", (query,)).fetchall())


def record(source: str, title: str = "", pages: int = 1) -> Any:
    from pyramid.store import DocumentRecord

    return DocumentRecord(
        source=source,
        path=source,
        file_sha256=None,
        sha256=None,
        title=title or source,
        format="md",
        page_count=pages,
        paged=False,
        status="ready",
    )


def store_document(
    kp: Any, source: str, items: list[tuple[str, str]], *, title: str = "", embed: bool = False
) -> dict[str, int]:
    """Store (or replace) a document with items given as (level, text), through the library's own
    write path; returns item key → id (keys are the positions, as strings)."""
    from pyramid.store import NewItem, replace_document

    async def run() -> dict[str, int]:
        vectors = (
            await kp.runtime.embedder.aencode_documents([t for _, t in items])
            if embed
            else [None] * len(items)
        )
        new = [
            NewItem(key=str(i), level=level, text=text, ordinal=i + 1, pages=[i + 1], embedding=vec)  # type: ignore[arg-type]
            for i, ((level, text), vec) in enumerate(zip(items, vectors, strict=True))
        ]
        async with kp.runtime.db.connection() as conn, conn.transaction():
            _, _, keys = await replace_document(conn, record(source, title, len(items)), new)
        return keys

    return kp.run(run())
