"""Search latency with row-level security on versus off, on latency.py's corpus in 10 collections.

    nice -n 10 python benchmarks/rls.py --items 1000000

Builds (once; re-runs resume or skip what is done, in their own data dir) the corpus of
benchmarks/latency.py, its documents spread round-robin over the collections c0..c9. Then, over
latency.py's fixed query set and query vectors, it times pyramid_search for the same collections
two ways, query by query in turn: as the database owner narrowed by the session setting
pyramid.collections (row-level security does not apply to the owner: "RLS off"), and as a role that
was granted read on those collections, with the same setting (the policies apply: "RLS on"). It
checks that both return the same hits (ids and scores) for every query, and times the owner over
all collections as context. Prints a table and writes benchmarks/results/rls-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import latency

ROOT = latency.ROOT
COLLECTIONS = [f"c{i}" for i in range(10)]
# The collections searched: one, and three (a reader of three); a role per scope is granted read
# on exactly these.
SCOPES = {"c3": ["c3"], "c3, c4, c5": ["c3", "c4", "c5"]}
CASES = {  # name: (mode, levels)
    "bm25 (all levels)": ("bm25", None),
    "vector (all levels)": ("vector", None),
    "hybrid (all levels)": ("hybrid", None),
    "hybrid (insight)": ("hybrid", ["insight"]),
}


def collection_ids(url: str) -> list[int]:
    """Create (if needed) the collections c0..c9; their ids, in that order."""
    import psycopg

    from pyramid import Pyramid

    with Pyramid.open(dsn=url):
        pass  # migrations
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO collections (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING",
            (COLLECTIONS,),
        )
        return [
            r[0]
            for r in conn.execute(
                "SELECT c.id FROM unnest(%s::text[]) WITH ORDINALITY n(name, o) "
                "JOIN collections c ON c.name = n.name ORDER BY n.o",
                (COLLECTIONS,),
            ).fetchall()
        ]


def reader(url: str, names: list[str]) -> str:
    """A role granted read on exactly these collections (Pyramid.grant, as `pyramid grant` does)."""
    from pyramid import Pyramid

    role = "bench_reader_" + "_".join(names)
    with Pyramid.open(dsn=url) as kp:
        for name in names:
            kp.grant(role, name)
    return role


def connect(url: str, role: str | None, scope: list[int] | None) -> Any:
    """A connection as the owner (role None) or as ``role``, its reads narrowed to ``scope`` by the
    session setting pyramid.collections (None: every collection), as the pyramid sets it."""
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.conninfo import make_conninfo

    conn = psycopg.connect(make_conninfo(url, user=role) if role else url, autocommit=True)
    register_vector(conn)
    if role is None:
        latency.refresh_functions(conn)  # the working tree's search functions
    if scope is not None:
        conn.execute("SELECT set_config('pyramid.collections', %s, false)", (",".join(map(str, scope)),))
    return conn


def run(conn: Any, sql: str, params: dict[str, Any]) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return (time.perf_counter() - t0) * 1000, rows


def measure(url: str, ids: list[int], n_queries: int, k: int) -> dict[str, Any]:
    from pyramid.sqlfiles import query

    search = query("search.run")
    texts, vectors = latency.query_set(n_queries)
    by_name = dict(zip(COLLECTIONS, ids, strict=True))
    results: dict[str, Any] = {"scopes": {}, "all_collections_owner": {}}
    for scope_name, names in SCOPES.items():
        scope = [by_name[n] for n in names]
        role = reader(url, names)
        off, on = connect(url, None, scope), connect(url, role, scope)
        got = on.execute("SELECT current_user, pyramid_readable_collections()").fetchone()
        print(f"Scope {scope_name} (ids {scope}): RLS off = the owner, RLS on = {got[0]} (reads {got[1]})")
        out: dict[str, Any] = {}
        for mode, levels in CASES.values():  # warm both, all queries
            for text, vec in zip(texts, vectors, strict=True):
                p = latency.search_params(text, vec, mode, levels, k)
                run(off, search, p)
                run(on, search, p)
        for name, (mode, levels) in CASES.items():
            t_off, t_on, differ, empty = [], [], 0, 0
            for i, (text, vec) in enumerate(zip(texts, vectors, strict=True)):
                p = latency.search_params(text, vec, mode, levels, k)
                # Query by query, the first of the two alternating, so load and caches treat both alike.
                if i % 2:
                    (a, ra), (b, rb) = run(off, search, p), run(on, search, p)
                else:
                    (b, rb), (a, ra) = run(on, search, p), run(off, search, p)
                t_off.append(a)
                t_on.append(b)
                differ += ra != rb  # every column: rank, id, level, each score, text, document
                empty += not ra
            r_off = latency.summary(f"{name}, RLS off", t_off)
            r_on = latency.summary(f"{name}, RLS on", t_on)
            out[name] = {
                "off": r_off,
                "on": r_on,
                "ratio_p50": r_on["p50_ms"] / r_off["p50_ms"],
                "ratio_p95": r_on["p95_ms"] / r_off["p95_ms"],
                "queries_with_different_results": differ,
                "queries_without_hits": empty,
            }
            print(f"    on/off p50 {out[name]['ratio_p50']:.2f}  different results: {differ}/{len(texts)}")
        results["scopes"][scope_name] = out
        off.close()
        on.close()
    everything = connect(url, None, None)
    for mode, levels in CASES.values():
        for text, vec in zip(texts, vectors, strict=True):
            run(everything, search, latency.search_params(text, vec, mode, levels, k))
    for name, (mode, levels) in CASES.items():
        times = [
            run(everything, search, latency.search_params(text, vec, mode, levels, k))[0]
            for text, vec in zip(texts, vectors, strict=True)
        ]
        results["all_collections_owner"][name] = latency.summary(f"{name}, all 10, owner", times)
    everything.close()
    return results


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench" / "rls-pg")
    parser.add_argument("--build-only", action="store_true", help="build (or finish building) and stop")
    args = parser.parse_args()
    url = latency.server(args.data_dir, args.items)
    ids = collection_ids(url)
    print(
        f"Building {args.items:,} items in {len(ids)} collections (skipped where done) in {args.data_dir}",
        flush=True,
    )
    timings = latency.build(url, args.items, ids)
    if args.build_only:
        return
    print("Timing queries", flush=True)
    results = measure(url, ids, args.queries, args.k)
    results["build_seconds"] = timings
    results["items"] = args.items
    results["queries"] = args.queries
    results["collections"] = dict(zip(COLLECTIONS, ids, strict=True))
    out = ROOT / "benchmarks" / "results" / f"rls-{args.items}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        "\n| collections searched | search | RLS off p50 ms | p95 ms | RLS on p50 ms | p95 ms "
        "| on/off p50 | on/off p95 | same hits |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for scope_name, cases in results["scopes"].items():
        for name, r in cases.items():
            same = args.queries - r["queries_with_different_results"]
            print(
                f"| {scope_name} | {name} | {r['off']['p50_ms']:.1f} | {r['off']['p95_ms']:.1f} "
                f"| {r['on']['p50_ms']:.1f} | {r['on']['p95_ms']:.1f} | {r['ratio_p50']:.2f} "
                f"| {r['ratio_p95']:.2f} | {same}/{args.queries} |"
            )
    print("\n| all 10 collections, owner | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, r in results["all_collections_owner"].items():
        print(f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
