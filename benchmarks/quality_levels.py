"""Retrieval quality per pyramid level on PhantomWiki: the articles are ingested for real (MarkItDown,
page splitting, the extractive distiller: insights, concepts, abstracts, recollections), then
bm25 / vector / hybrid are scored over pages, over the distilled levels, and over both.

    nice -n 10 python benchmarks/quality_levels.py [--eval ../shared/eval/phantomwiki-s1]

An article is relevant when a hit comes from it: the hits of one search are read in order and
the first 10 distinct articles are scored (recall@10, nDCG@10 of the supporting articles), so a
level of many small items (insights) is judged on the same 10 articles as a level of pages; a
search asks for 50 items. Recollections have no single article and are skipped when scoring.
Prints a table and writes benchmarks/results/quality-levels-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_pages import fresh_database  # noqa: E402
from quality import K, load, metrics  # noqa: E402

ITEMS = 50  # items a search returns before the first K distinct articles are scored

LEVEL_SETS: dict[str, list[str]] = {
    "page": ["page"],
    "insight": ["insight"],
    "concept": ["concept"],
    "insight+concept+abstract": ["insight", "concept", "abstract"],
    "all levels": ["page", "insight", "concept", "abstract", "recollection"],
}


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "phantomwiki-s1")
    parser.add_argument("--embedding-backend", default="auto", help="auto, torch or onnx")
    parser.add_argument("--embedding-precision", help="int8 or fp32 (onnx), fp32 or fp16 (torch)")
    args = parser.parse_args()

    from pyramid import Pyramid
    from pyramid.store.database import stop_embedded

    articles, everything = load(args.eval)
    questions = [q for q in everything if q["supporting_articles"]]
    # The stored source is the file's path; its article title is the file's first heading.
    title_of = {}
    for path in sorted((args.eval / "articles").glob("*.md")):
        title_of[str(path.resolve())] = path.read_text("utf-8").splitlines()[0].lstrip("# ").strip()
    print(f"{len(articles)} articles, {len(questions)} questions with supporting articles", flush=True)

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kp-quality-levels-") as tmp:
        dsn, data_dir = fresh_database(Path(tmp))
        try:
            with Pyramid.open(
                dsn=dsn,
                embedding_backend=args.embedding_backend,
                embedding_precision=args.embedding_precision,
                encoder_cache_dir=Path(tmp) / "encoders",
            ) as kp:
                encoder = f"{kp.runtime.embedder.backend}-{kp.runtime.embedder.precision}"
                started = time.perf_counter()
                report = kp.ingest([args.eval / "articles"])
                assert report.ok, report.failed
                ingest_s = time.perf_counter() - started
                levels = kp.stats().items
                print(f"ingested in {ingest_s:.0f} s: {levels}", flush=True)

                def system(mode: str, chosen: list[str]) -> Callable[[str], list[str]]:
                    def run(q: str) -> list[str]:
                        hits = kp.search(q, levels=chosen, k=ITEMS, mode=mode)
                        return [title_of.get(h.source or "", "") for h in hits if h.source]

                    return run

                for label, chosen in LEVEL_SETS.items():
                    for mode in ("bm25", "vector", "hybrid"):
                        name = f"{mode} · {label}"
                        run = system(mode, chosen)
                        started = time.perf_counter()
                        scores = [
                            metrics(run(q["question"]), set(q["supporting_articles"])) for q in questions
                        ]
                        results[name] = {
                            "levels": chosen,
                            "mode": mode,
                            "recall@10": sum(r for r, _ in scores) / len(scores),
                            "ndcg@10": sum(n for _, n in scores) / len(scores),
                            "ms_per_query": (time.perf_counter() - started) * 1000 / len(questions),
                        }
                        print(
                            f"  {name:40s} recall@10 {results[name]['recall@10']:.4f}  "
                            f"nDCG@10 {results[name]['ndcg@10']:.4f}",
                            flush=True,
                        )
        finally:
            stop_embedded(data_dir)

    # The default encoder keeps the file name the README cites; others get their own.
    suffix = "" if args.embedding_backend == "auto" and args.embedding_precision is None else f"-{encoder}"
    out = ROOT / "benchmarks" / "results" / f"quality-levels-{args.eval.name}{suffix}.json"
    out.write_text(
        json.dumps(
            {
                "eval": args.eval.name,
                "encoder": encoder,
                "questions": len(questions),
                "k": K,
                "items_per_search": ITEMS,
                "ingest_seconds": round(ingest_s, 1),
                "items": levels,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\n| levels | mode | recall@{K} | nDCG@{K} | ms/query |\n|---|---|---:|---:|---:|")
    for r in results.values():
        print(
            f"| {', '.join(r['levels'])} | {r['mode']} | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} "
            f"| {r['ms_per_query']:.1f} |"
        )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
