"""Search latency on a synthetic pyramid in the embedded PostgreSQL.

    nice -n 10 python benchmarks/latency.py --items 1000000

Builds (once; re-runs resume or skip what is done) N items with the level mix of published
pyramids (87% insights, 7% pages, 5% concepts, 1% abstracts), texts of realistic lengths drawn
from a Zipfian vocabulary, and 384-dim embeddings drawn around topic centres. Items go in through
COPY into items, so the BM25 triggers build the postings as in production; the postings and HNSW
indexes are built after loading. Then it times, over a fixed query set that includes the most
common terms: BM25, vector and hybrid search through pyramid_search (the query the library runs),
a bare pgvector `ORDER BY embedding <=> q LIMIT k` on one level's HNSW index, and the exhaustive
BM25 scan that pruning avoids; and it checks that pruned BM25 returned the exhaustive top k.
Prints tables and writes benchmarks/results/latency-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LEVEL_MIX = [
    ("insight", 0.87, (8, 30)),
    ("page", 0.07, (150, 500)),
    ("concept", 0.05, (15, 50)),
    ("abstract", 0.01, (80, 200)),
]
STOP = "the of and to in a is that for it as was with be by on not he this are or his from at which".split()
VOCAB = 50_000
DIM = 384
TOPICS = 2000
BATCH = 20_000
SEED = 20260101
ITEMS_PER_DOC = 60


def vocabulary() -> list[str]:
    rng = np.random.default_rng(SEED)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["qua", "tri", "sho", "ran", "vel"]
    words: set[str] = set()
    while len(words) < VOCAB:
        n = int(rng.integers(2, 5))
        words.add("".join(syllables[int(i)] for i in rng.integers(0, len(syllables), n)))
    return sorted(words)


# Word frequencies follow Zipf's law over the whole language, where the first ~100 ranks are
# function words that to_tsvector drops (they are drawn from STOP instead, for 40% of the tokens).
# Content words therefore continue the curve from rank 101: the most common one is in about 3% of
# the insights and a third of the pages, as the commonest content words of real text are.
FUNCTION_WORD_RANKS = 100
STOP_SHARE = 0.4


def zipf_probabilities() -> np.ndarray:
    weights = 1.0 / (np.arange(1, VOCAB + 1) + FUNCTION_WORD_RANKS) ** 1.07
    return weights / weights.sum()


def centres() -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    c = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def batch_rows(
    batch: int,
    start_id: int,
    count: int,
    words: list[str],
    probs: np.ndarray,
    topic_centres: np.ndarray,
    collections: list[int] | None = None,
) -> list[tuple[Any, ...]]:
    """Deterministic rows of one batch (so an interrupted load resumes with the same data). With
    ``collections``, each row ends with its document's collection: documents go round-robin over
    the given collection ids by document id (the items are the same as without)."""
    rng = np.random.default_rng(SEED + 100 + batch)
    names = [m[0] for m in LEVEL_MIX]
    levels = rng.choice(len(LEVEL_MIX), size=count, p=[m[1] for m in LEVEL_MIX])
    lengths = np.array([rng.integers(*LEVEL_MIX[lv][2]) for lv in levels])
    drawn = rng.choice(VOCAB, size=int(lengths.sum()), p=probs)
    stops = rng.random(int(lengths.sum())) < STOP_SHARE
    stop_pick = rng.integers(0, len(STOP), int(lengths.sum()))
    topics = rng.integers(0, TOPICS, count)
    vectors = topic_centres[topics] + 0.08 * rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = []
    offset = 0
    for i in range(count):
        n = int(lengths[i])
        tokens = [STOP[stop_pick[j]] if stops[j] else words[drawn[j]] for j in range(offset, offset + n)]
        offset += n
        item_id = start_id + i
        document_id = 1 + (item_id - 1) // ITEMS_PER_DOC
        row: tuple[Any, ...] = (document_id, names[levels[i]], " ".join(tokens) + ".", vectors[i])
        if collections:
            row += (collections[(document_id - 1) % len(collections)],)
        rows.append((item_id, *row))
    return rows


COMMON_QUERIES = 10


def queries(words: list[str], n: int) -> list[str]:
    """A fixed query set. The first ten are built from the most common content words (the worst
    case for BM25: the longest postings lists); the others have 2-5 words whose frequency rank is
    drawn log-uniformly from 1 to 50,000, so common, middling and rare words all occur, plus a
    stop-word."""
    rng = np.random.default_rng(SEED + 7)
    w = words
    out = [
        w[0],
        f"{w[0]} {w[1]}",
        f"{w[0]} {w[1]} {w[2]}",
        f"{w[0]} {w[1]} {w[2]} {w[3]}",
        f"{w[1]} {w[5]}",
        f"the {w[2]} of {w[4]}",
        f"{w[0]} {w[300]}",
        f"{w[1]} {w[3]} {w[9]} {w[20]} {w[40]}",
        f"{w[0]} {w[30_000]}",
        f"{w[6]} {w[7]} {w[8]}",
    ]
    while len(out) < n:
        ranks = np.exp(rng.uniform(0, np.log(VOCAB), int(rng.integers(2, 6)))).astype(int) - 1
        out.append(" ".join(["the"] + [w[int(r)] for r in ranks]))
    return out[:n]


# --- database -------------------------------------------------------------------------------------


def server(data_dir: Path, items: int) -> str:
    from pyramid.store.database import _ensure_database, start_embedded, stop_embedded

    url = start_embedded(data_dir)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        shared = conn.execute("SHOW shared_buffers").fetchone()[0]
        if shared != "2GB":
            # The embedded server's defaults (128MB) are for a laptop tool; a million items deserve a
            # buffer cache. Applied with a restart of this benchmark's own server.
            conn.execute("ALTER SYSTEM SET shared_buffers = '2GB'")
            conn.execute("ALTER SYSTEM SET maintenance_work_mem = '3GB'")
            conn.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 1")
            conn.execute("ALTER SYSTEM SET effective_cache_size = '12GB'")
            restart = True
        else:
            restart = False
    if restart:
        # pgserver remembers the server it started in this process; start it again from a new one.
        stop_embedded(data_dir)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return _ensure_database(url.replace("/pyramid?", "/postgres?", 1), f"bench_{items}")


def step_done(conn: Any, step: str) -> bool:
    return conn.execute("SELECT 1 FROM bench_progress WHERE step = %s", (step,)).fetchone() is not None


def run_step(conn: Any, step: str, sql: list[str], timings: dict[str, float]) -> None:
    if step_done(conn, step):
        timings[step] = conn.execute(
            "SELECT seconds FROM bench_progress WHERE step = %s", (step,)
        ).fetchone()[0]
        return
    started = time.perf_counter()
    for statement in sql:
        conn.execute(statement)
    timings[step] = time.perf_counter() - started
    conn.execute("INSERT INTO bench_progress VALUES (%s, %s)", (step, timings[step]))
    print(f"  {step}: {timings[step]:.1f} s", flush=True)


# The indexes built after loading, with the step names the progress table records them under.
DEFERRED = {
    "bm25_postings_pkey": "index_postings_pk",
    "bm25_postings_impact": "index_postings_impact",
    **{
        f"items_embedding_{lv}": f"index_hnsw_{lv}"
        for lv in ("page", "insight", "concept", "abstract", "recollection")
    },
}


def defer_indexes(conn: Any) -> None:
    """Drop the indexes the migrations made (a sort after loading beats a million random index
    inserts), keeping their definitions to build them again exactly as the migrations define them."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_ddl (name text PRIMARY KEY, ddl text NOT NULL)")
    conn.execute(
        "INSERT INTO bench_ddl SELECT indexname, indexdef FROM pg_indexes "
        "WHERE indexname = ANY(%s) ON CONFLICT DO NOTHING",
        (list(DEFERRED),),
    )
    conn.execute("ALTER TABLE bm25_postings DROP CONSTRAINT IF EXISTS bm25_postings_pkey")
    for name in DEFERRED:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def build_deferred(conn: Any, timings: dict[str, float]) -> None:
    saved = (
        dict(conn.execute("SELECT name, ddl FROM bench_ddl").fetchall())
        if conn.execute("SELECT to_regclass('bench_ddl')").fetchone()[0]
        else {}
    )
    for name, step in DEFERRED.items():
        ddl = [saved.get(name, "")]
        if name == "bm25_postings_pkey":
            ddl.append(
                "ALTER TABLE bm25_postings ADD CONSTRAINT bm25_postings_pkey PRIMARY KEY "
                "USING INDEX bm25_postings_pkey"
            )
        run_step(conn, step, ddl, timings)


def build(url: str, items: int, collections: list[int] | None = None) -> dict[str, float]:
    """Load the items (see batch_rows for ``collections``) and build the indexes, resuming where an
    earlier run stopped."""
    import psycopg
    from pgvector.psycopg import register_vector

    from pyramid import Pyramid

    with Pyramid.open(dsn=url):
        pass  # migrations
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS bench_progress (step text PRIMARY KEY, seconds float8)")
        if not step_done(conn, "load"):
            defer_indexes(conn)
            docs = (items + ITEMS_PER_DOC - 1) // ITEMS_PER_DOC
            cols = collections or [1]  # 1: the collection 'default'
            conn.execute(
                "INSERT INTO documents (source, path, title, status, collection_id) OVERRIDING SYSTEM VALUE "
                "SELECT '/bench/doc' || g || '.md', '/bench/doc' || g || '.md', 'Doc ' || g, 'ready', "
                "(%s::integer[])[1 + (g - 1) %% %s] "
                "FROM generate_series(1, %s) g ON CONFLICT DO NOTHING",
                (cols, len(cols), docs),
            )
            words, probs, topic_centres = vocabulary(), zipf_probabilities(), centres()
            done = conn.execute("SELECT count(*) FROM items").fetchone()[0]
            started = time.perf_counter()
            spent = 0.0
            for batch in range(done // BATCH, (items + BATCH - 1) // BATCH):
                first = batch * BATCH + 1
                rows = batch_rows(
                    batch, first, min(BATCH, items - first + 1), words, probs, topic_centres, collections
                )
                t0 = time.perf_counter()
                columns = "id, document_id, level, text, embedding" + (
                    ", collection_id" if collections else ""
                )
                with (
                    conn.transaction(),
                    conn.cursor().copy(f"COPY items ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(
                        ["bigint", "bigint", "text", "text", "vector"] + (["integer"] if collections else [])
                    )
                    for row in rows:
                        copy.write_row(row)
                spent += time.perf_counter() - t0
                print(
                    f"  loaded {first + len(rows) - 1:,} items ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            conn.execute("SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items))")
            conn.execute("INSERT INTO bench_progress VALUES ('load', %s)", (spent,))
        timings["load"] = conn.execute("SELECT seconds FROM bench_progress WHERE step = 'load'").fetchone()[0]
        run_step(conn, "compact", ["SELECT pyramid_bm25_compact()"], timings)
        build_deferred(conn, timings)
        run_step(
            conn,
            "vacuum_analyze",
            ["VACUUM ANALYZE items", "VACUUM ANALYZE bm25_postings", "VACUUM ANALYZE bm25_terms"],
            timings,
        )
    return timings


def refresh_functions(conn: Any) -> None:
    """Re-create the SQL functions from the working tree's pyramid/sql/functions/, so that a database
    built by an earlier run is measured with the current search code (the data stay as built)."""
    from pyramid.sqlfiles import functions

    conn.execute("DROP FUNCTION IF EXISTS pyramid_bm25_terms(text, text)")  # its OUT columns grew
    for function in functions():
        conn.execute(function.sql)


def sizes(conn: Any) -> dict[str, int]:
    out = {}
    for name in ("items", "bm25_postings", "bm25_terms"):
        out[f"{name} (table)"] = conn.execute("SELECT pg_table_size(%s)", (name,)).fetchone()[0]
    for (name,) in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename IN ('items', 'bm25_postings', 'bm25_terms') ORDER BY 1"
    ).fetchall():
        out[name] = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()[0]
    out["database"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return out


# --- timing ---------------------------------------------------------------------------------------


def timed(conn: Any, sql: str, params: Any) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return (time.perf_counter() - t0) * 1000, rows


def summary(name: str, times: list[float]) -> dict[str, float]:
    """p50/p95/mean of one case's times (ms), and p50/max of its common-word queries (the first
    COMMON_QUERIES); printed as a line."""
    common = sorted(times[:COMMON_QUERIES])
    ordered = sorted(times)
    r = {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
        "mean_ms": statistics.fmean(ordered),
        "common_terms_p50_ms": statistics.median(common),
        "common_terms_max_ms": common[-1],
    }
    print(
        f"  {name:32s} p50 {r['p50_ms']:8.2f}  p95 {r['p95_ms']:8.2f}  common-terms p50 "
        f"{r['common_terms_p50_ms']:8.2f}  max {r['common_terms_max_ms']:8.2f} ms",
        flush=True,
    )
    return r


def library(
    url: str, texts: list[str], vectors: Any, params: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """The same searches as the library runs them (``pyramid.search.hybrid._run``: through the pool, rows
    turned into hits), one SQL call for all levels versus the levels on parallel connections."""
    from pyramid import Pyramid
    from pyramid.search.hybrid import _run

    out: dict[str, Any] = {}
    with Pyramid.open(dsn=url) as kp:
        db = kp.runtime.db
        cases = {
            "library hybrid (all levels), one SQL call": (None, 1),
            "library hybrid (all levels), levels in parallel (4)": (None, 4),
            "library hybrid (ask levels), levels in parallel (4)": (
                ["insight", "concept", "abstract", "recollection"],
                4,
            ),
        }
        for levels, parallel in cases.values():  # warm
            for text, vec in zip(texts, vectors, strict=True):
                kp.run(_run(db, params(text, vec, "hybrid", levels), parallel=parallel))
        for name, (levels, parallel) in cases.items():
            times = []
            for text, vec in zip(texts, vectors, strict=True):
                t0 = time.perf_counter()
                kp.run(_run(db, params(text, vec, "hybrid", levels), parallel=parallel))
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = summary(name, times)
    return out


def query_set(n_queries: int) -> tuple[list[str], np.ndarray]:
    """The fixed query texts (see queries) and their query vectors, drawn around topic centres as
    the items' are."""
    texts = queries(vocabulary(), n_queries)
    rng = np.random.default_rng(SEED + 9)
    topic_centres = centres()
    vectors = topic_centres[rng.integers(0, TOPICS, len(texts))] + 0.08 * rng.standard_normal(
        (len(texts), DIM)
    )
    return texts, (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def search_params(text: str, vec: Any, mode: str, levels: list[str] | None, k: int) -> dict[str, Any]:
    """The parameters of the named query search.run, with the library's defaults."""
    return {
        "query": text,
        "embedding": vec,
        "levels": levels,
        "k": k,
        "mode": mode,
        "docs": None,
        "fusion": "weighted",
        "rrf_k": 60,
        "weight_bm25": 0.5,
        "candidates": 100,
        "k1": 1.2,
        "b": 0.75,
    }


def measure(url: str, items: int, n_queries: int, k: int) -> dict[str, Any]:
    import psycopg
    from pgvector.psycopg import register_vector

    from pyramid.sqlfiles import query

    texts, vectors = query_set(n_queries)
    search = query("search.run")

    def params(text: str, vec: Any, mode: str, levels: list[str] | None = None) -> dict[str, Any]:
        return search_params(text, vec, mode, levels, k)

    cases = {
        "bm25 (all levels)": lambda t, v: (search, params(t, None, "bm25")),
        "vector (all levels)": lambda t, v: (search, params(t, v, "vector")),
        "hybrid (all levels)": lambda t, v: (search, params(t, v, "hybrid")),
        "hybrid (all levels, candidates 50)": lambda t, v: (
            search,
            {**params(t, v, "hybrid"), "candidates": 50},
        ),
        "hybrid (ask levels: insight, concept, abstract, recollection)": lambda t, v: (
            search,
            params(t, v, "hybrid", ["insight", "concept", "abstract", "recollection"]),
        ),
        "bm25 (insight)": lambda t, v: (search, params(t, None, "bm25", ["insight"])),
        "vector (insight)": lambda t, v: (search, params(t, v, "vector", ["insight"])),
        "hybrid (insight)": lambda t, v: (search, params(t, v, "hybrid", ["insight"])),
        "bare pgvector HNSW (insight)": lambda t, v: (
            "SELECT id FROM items WHERE level = 'insight' ORDER BY embedding <=> %s LIMIT %s",
            (v, k),
        ),
        "bm25 leg, as chosen (insight, 100)": lambda t, v: (
            "SELECT * FROM pyramid_bm25(%s, 'insight', 100)",
            (t,),
        ),
        "bm25 leg, full scan (insight, 100)": lambda t, v: (
            "SELECT * FROM pyramid_bm25(%s, 'insight', 100, exhaustive => true)",
            (t,),
        ),
        "bm25 leg, pruned (insight, 100)": lambda t, v: (
            "SELECT * FROM pyramid_bm25_forced_pruning(%s, 'insight', 100)",
            (t,),
        ),
    }
    results: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        refresh_functions(conn)
        # The pruned path whatever the list lengths (the default scans lists this short whole).
        conn.execute(
            "CREATE OR REPLACE FUNCTION pyramid_bm25_forced_pruning(q text, lvl text, k integer) "
            "RETURNS TABLE (item_id bigint, score double precision) LANGUAGE sql STABLE "
            "SET pyramid.scan_below = 0 SET pyramid.prune_budget = 1000 SET pyramid.prune_long_lists = 100 "
            "AS $$ SELECT * FROM pyramid_bm25(q, lvl, k) $$"
        )
        for text, vec in zip(texts, vectors, strict=True):  # warm the caches once
            for make in cases.values():
                conn.execute(*make(text, vec)).fetchall()
        for name, make in cases.items():
            times = [timed(conn, *make(text, vec))[0] for text, vec in zip(texts, vectors, strict=True)]
            results[name] = summary(name, times)
        results.update(library(url, texts, vectors, params))
        mismatches = 0
        for text in texts:
            for lv in ("insight", "page", "concept", "abstract"):
                pruned = conn.execute(
                    "SELECT item_id, score FROM pyramid_bm25_forced_pruning(%s, %s, 100)", (text, lv)
                ).fetchall()
                full = conn.execute(
                    "SELECT item_id, score FROM pyramid_bm25(%s, %s, 100, exhaustive => true)", (text, lv)
                ).fetchall()
                # Same scores rank by rank; same items except ties (within 1e-6) with the 100th.
                same_scores = len(pruned) == len(full) and all(
                    abs(a[1] - b[1]) <= 1e-6 * b[1] for a, b in zip(pruned, full, strict=True)
                )
                edge = full[-1][1] * (1 + 2e-6) if full else 0
                same_ids = {i for i, s in pruned if s > edge} == {i for i, s in full if s > edge}
                mismatches += not (same_scores and same_ids)
        results["pruned_equals_exhaustive"] = {"checked": len(texts) * 4, "mismatches": mismatches}
        print(
            f"  pruned top-100 == exhaustive top-100: {len(texts) * 4 - mismatches}/{len(texts) * 4} (query, level)"
        )
        results["sizes"] = sizes(conn)
        results["postings"] = conn.execute("SELECT count(*) FROM bm25_postings").fetchone()[0]
        results["common_terms_df"] = dict(
            conn.execute(
                "SELECT lexeme, df FROM bm25_terms WHERE level = 'insight' ORDER BY df DESC LIMIT 5"
            ).fetchall()
        )
    return results


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench" / "pg")
    args = parser.parse_args()
    url = server(args.data_dir, args.items)
    print(f"Building {args.items:,} items (skipped where done) in {args.data_dir}", flush=True)
    timings = build(url, args.items)
    print("Timing queries", flush=True)
    results = measure(url, args.items, args.queries, args.k)
    results["build_seconds"] = timings
    results["items"] = args.items
    results["queries"] = args.queries
    out = ROOT / "benchmarks" / "results" / f"latency-{args.items}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| search | p50 ms | p95 ms | common-term queries: p50 ms | max ms |\n|---|---:|---:|---:|---:|")
    for name, r in results.items():
        if isinstance(r, dict) and "p50_ms" in r:
            print(
                f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['common_terms_p50_ms']:.1f} "
                f"| {r['common_terms_max_ms']:.1f} |"
            )
    print("\n| build step | seconds |\n|---|---:|")
    for step, seconds in timings.items():
        print(f"| {step} | {seconds:.1f} |")
    print("\n| relation | MB |\n|---|---:|")
    for name, size in results["sizes"].items():
        print(f"| {name} | {size / 2**20:.0f} |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
