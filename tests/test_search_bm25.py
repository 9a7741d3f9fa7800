"""BM25 in SQL: scores equal a Python reference over the database's own lexemes, statistics stay
exact through inserts, deletes, updates and compaction, and pruned top-k equals exhaustive top-k."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from search_helpers import assert_statistics_exact, query_lexemes, reference, sentence, store_document

QUERIES = [
    "river bank money",  # the most common words: long postings lists
    "interest rate on the loan for the bank",
    "wolf deer hunter arrow",  # rare words
    "bank bank bank market",  # a repeated query term counts as often as it is repeated
    "castle",
    "the of and",  # stop-words only: no lexeme, no result
]


@pytest.fixture(scope="module")
def corpus(kp: Any) -> Iterator[dict[str, dict[str, int]]]:
    """Three documents with pages and insights, then deletes, an update and a replacement."""
    rng = random.Random(7)
    docs = {}
    for d in range(4):
        items = [("page", sentence(rng, rng.randint(30, 120))) for _ in range(25)]
        items += [("insight", sentence(rng, rng.randint(4, 16))) for _ in range(120)]
        items.append(("insight", "the of and"))  # no lexeme at all: counts in N with length 0
        docs[f"/c/doc{d}.md"] = store_document(kp, f"/c/doc{d}.md", items)
    with psycopg.connect(kp.url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM items WHERE id = ANY(%s)", ([docs["/c/doc0.md"][str(i)] for i in range(0, 40, 3)],)
        )
        conn.execute(
            "UPDATE items SET text = 'Castle castle king and the queen of the castle.' WHERE id = %s",
            (docs["/c/doc1.md"]["30"],),
        )
        conn.execute("UPDATE items SET stale = true WHERE id = %s", (docs["/c/doc1.md"]["31"],))
        conn.execute("DELETE FROM documents WHERE source = '/c/doc3.md'")
    # A replacement deletes and rewrites a document's items in one transaction.
    docs["/c/doc2.md"] = store_document(kp, "/c/doc2.md", [("page", sentence(rng, 80)) for _ in range(10)])
    yield docs


@pytest.fixture
def conn(kp: Any) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(kp.url, autocommit=True) as connection:
        # Short lists are normally scored whole; make every non-exhaustive call take the pruned path.
        connection.execute("SET pyramid.scan_below = 0")
        connection.execute("SET pyramid.prune_budget = 1000")
        connection.execute("SET pyramid.prune_long_lists = 100")
        yield connection


def _sql_scores(
    conn: psycopg.Connection[Any],
    query: str,
    level: str,
    *,
    exhaustive: bool,
    k: int = 10_000,
    k1: float = 1.2,
    b: float = 0.75,
    docs: list[int] | None = None,
) -> list[tuple[int, float]]:
    return conn.execute(
        "SELECT item_id, score FROM pyramid_bm25(%s, %s, %s, %s, %s, %s, %s)",
        (query, level, k, docs, k1, b, exhaustive),
    ).fetchall()


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("level", ["page", "insight"])
def test_scores_equal_the_python_reference(
    corpus: Any, conn: psycopg.Connection[Any], query: str, level: str
) -> None:
    expected = reference(conn).scores(query_lexemes(conn, query), level)
    got = dict(_sql_scores(conn, query, level, exhaustive=True))
    assert got.keys() == expected.keys()
    for item, score in expected.items():
        assert got[item] == pytest.approx(score, abs=1e-6)
    if query == "the of and":
        assert got == {}


def test_non_default_k1_b_equal_the_reference(corpus: Any, conn: psycopg.Connection[Any]) -> None:
    query = "interest rate on the loan"
    expected = reference(conn).scores(query_lexemes(conn, query), "insight", k1=0.9, b=0.4)
    got = dict(_sql_scores(conn, query, "insight", exhaustive=False, k1=0.9, b=0.4))
    assert got.keys() == expected.keys()
    assert all(got[i] == pytest.approx(s, abs=1e-6) for i, s in expected.items())


def test_statistics_are_exact_before_and_after_compaction(corpus: Any, conn: psycopg.Connection[Any]) -> None:
    assert conn.execute("SELECT count(*) FROM bm25_term_deltas").fetchone()[0] > 0
    assert_statistics_exact(conn)
    folded, _ = conn.execute("SELECT * FROM pyramid_bm25_compact()").fetchone()
    assert folded > 0
    assert conn.execute("SELECT count(*) FROM bm25_term_deltas").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM bm25_level_deltas").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM bm25_terms WHERE df <= 0").fetchone() == (0,)
    assert_statistics_exact(conn)


def _assert_same_top(pruned: list[tuple[int, float]], exhaustive: list[tuple[int, float]]) -> None:
    """Equal scores rank by rank; equal ids except among items tied (within 1e-6, the rounding of the
    stored impacts) with the last one kept."""
    assert len(pruned) == len(exhaustive)
    for (_, a), (_, b) in zip(pruned, exhaustive, strict=True):
        assert a == pytest.approx(b, rel=1e-6)
    if exhaustive:
        edge = exhaustive[-1][1] * (1 + 2e-6)
        assert {i for i, s in pruned if s > edge} == {i for i, s in exhaustive if s > edge}


@pytest.mark.parametrize("k", [1, 3, 10, 40])
@pytest.mark.parametrize("query", QUERIES[:4])
def test_pruned_top_k_equals_exhaustive_top_k(
    corpus: Any, conn: psycopg.Connection[Any], query: str, k: int
) -> None:
    for level in ("page", "insight"):
        _assert_same_top(
            _sql_scores(conn, query, level, exhaustive=False, k=k),
            _sql_scores(conn, query, level, exhaustive=True, k=k),
        )


def test_pruning_stays_exact_on_a_large_level(fresh_dsn: str) -> None:
    """Thousands of short items: the common terms' lists are far longer than what is read first."""
    from pyramid import Pyramid

    rng = random.Random(11)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        for d in range(3):
            store_document(
                kp, f"/big/{d}.md", [("insight", sentence(rng, rng.randint(3, 12))) for _ in range(1500)]
            )
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            conn.execute("SET pyramid.scan_below = 0")
            conn.execute("SET pyramid.prune_budget = 1000")
            conn.execute("SET pyramid.prune_long_lists = 100")
            for query in QUERIES[:5] + ["market price of bread and wheat", "river river river"]:
                for k in (1, 5, 20, 100):
                    _assert_same_top(
                        _sql_scores(conn, query, "insight", exhaustive=False, k=k),
                        _sql_scores(conn, query, "insight", exhaustive=True, k=k),
                    )


def test_compaction_recomputes_impacts_for_other_parameters(
    corpus: Any, conn: psycopg.Connection[Any]
) -> None:
    _, reimpacted = conn.execute("SELECT * FROM pyramid_bm25_compact(0.9, 0.4)").fetchone()
    assert set(reimpacted) == {"page", "insight"}
    assert conn.execute("SELECT DISTINCT ref_k1, ref_b FROM bm25_impact_ref").fetchall() == [(0.9, 0.4)]
    for query in QUERIES[:4]:
        _assert_same_top(
            _sql_scores(conn, query, "insight", exhaustive=False, k=5, k1=0.9, b=0.4),
            _sql_scores(conn, query, "insight", exhaustive=True, k=5, k1=0.9, b=0.4),
        )
    _, back = conn.execute("SELECT * FROM pyramid_bm25_compact()").fetchone()
    assert set(back) == {"page", "insight"}


def test_document_filter_applies_before_the_limit(
    corpus: dict[str, dict[str, int]], conn: psycopg.Connection[Any]
) -> None:
    doc = conn.execute("SELECT id FROM documents WHERE source = '/c/doc1.md'").fetchone()[0]
    for exact_below in ("20000", "0"):  # the small-set path and the index path
        conn.execute("SELECT set_config('pyramid.exact_below', %s, false)", (exact_below,))
        hits = _sql_scores(conn, "river bank money", "insight", exhaustive=False, k=15, docs=[doc])
        assert len(hits) == 15
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT document_id FROM items WHERE id = ANY(%s)", ([i for i, _ in hits],)
            )
        }
        assert owners == {doc}
        everything = dict(_sql_scores(conn, "river bank money", "insight", exhaustive=True))
        in_doc = sorted(
            ((i, s) for i, s in everything.items() if i in set(corpus["/c/doc1.md"].values())),
            key=lambda p: (-p[1], p[0]),
        )[:15]
        _assert_same_top(hits, in_doc)
    conn.execute("RESET pyramid.exact_below")


def test_truncate_empties_the_index(fresh_dsn: str) -> None:
    from pyramid import Pyramid

    with Pyramid.open(dsn=fresh_dsn) as kp:
        store_document(kp, "/t/a.md", [("page", "Wolves hunt deer."), ("insight", "Deer run.")])
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM bm25_postings").fetchone()[0] > 0
            conn.execute("TRUNCATE documents CASCADE")
            assert_statistics_exact(conn)
            assert conn.execute("SELECT count(*) FROM bm25_postings").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM bm25_level_stats").fetchone() == (0,)
        assert kp.search("wolves") == []  # an empty pyramid: no level to search, no error
        store_document(kp, "/t/b.md", [("page", "Rates rose.")])
        assert [h.source for h in kp.search("rates", mode="bm25")] == ["/t/b.md"]
