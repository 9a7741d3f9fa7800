"""Extractive distiller throughput: `pyramid ingest` end to end with the default (no LLM) distiller,
in pages per second, and what it builds: insights and concepts per page.

    python benchmarks/distill_extractive.py                    # PhantomWiki articles + a report corpus
    python benchmarks/distill_extractive.py --phantomwiki DIR --files 200
    python benchmarks/distill_extractive.py --embedding-backend auto   # one encoder (default: torch,auto)

Two corpora: the PhantomWiki biographies (short one-page articles of one-sentence facts, from
shared/eval when present) and generated multi-page markdown reports (benchmarks/corpus.py: prose,
lists and tables, ~3,000 characters a page), each ingested once per encoder backend on the same
files (torch, then the default). Prints a table and writes
benchmarks/results/distill_extractive.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import write_markdown_corpus  # noqa: E402
from ingest_pages import RESULTS, fresh_database  # noqa: E402

PHANTOMWIKI = ROOT.parent / "shared" / "eval" / "phantomwiki-s1" / "articles"


def measure(name: str, dsn: str, corpus: Path, backend: str, cache: Path) -> dict[str, Any]:
    from pyramid import Pyramid

    with Pyramid.open(dsn=dsn, embedding_backend=backend, encoder_cache_dir=cache) as kp:
        # The clock starts with the model loaded and warm (torch's first batches are slow).
        kp.run(kp.runtime.embedder.aencode_documents(["Warm up the encoder."] * 64))
        encoder = f"{kp.runtime.embedder.backend} {kp.runtime.embedder.precision}"
        started = time.perf_counter()
        report = kp.ingest([corpus])
        elapsed = time.perf_counter() - started
        assert report.ok, report.failed[:3]
        stats = kp.stats()
    pages = stats.items.get("page", 0)
    return {
        "corpus": name,
        "requested": backend,
        "encoder": encoder,
        "documents": len(report.results),
        "pages": pages,
        "seconds": round(elapsed, 2),
        "pages_per_s": round(pages / elapsed, 2),
        "documents_per_s": round(len(report.results) / elapsed, 2),
        "insights": stats.items.get("insight", 0),
        "concepts": stats.items.get("concept", 0),
        "recollections": stats.items.get("recollection", 0),
        "insights_per_page": round(stats.items.get("insight", 0) / pages, 2),
        "concepts_per_page": round(stats.items.get("concept", 0) / pages, 2),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(report.timings.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--phantomwiki", type=Path, default=PHANTOMWIKI, help="folder of PhantomWiki articles"
    )
    parser.add_argument(
        "--files", type=int, default=400, help="PhantomWiki articles to take (sorted by name)"
    )
    parser.add_argument("--reports", type=int, default=40, help="generated report files (8 pages each)")
    parser.add_argument(
        "--embedding-backend",
        default="torch,auto",
        help="backends to run in turn on the same files, each into fresh databases (auto, torch, onnx)",
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.embedding_backend.split(",") if b.strip()]

    from pyramid.store.database import stop_embedded

    results = []
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        work = Path(tmp)
        corpora: list[tuple[str, Path]] = []
        if args.phantomwiki.is_dir():
            articles = work / "phantomwiki"
            articles.mkdir()
            for path in sorted(args.phantomwiki.glob("*.md"))[: args.files]:
                shutil.copy(path, articles / path.name)
            corpora.append(("phantomwiki", articles))
        else:
            print(f"no PhantomWiki articles at {args.phantomwiki}; skipping that corpus", file=sys.stderr)
        write_markdown_corpus(work / "reports", files=args.reports, sections=8)
        corpora.append(("reports", work / "reports"))
        dsn, data_dir = fresh_database(work)
        try:
            for name, corpus in corpora:
                for backend in backends:
                    # Each corpus and backend in its own database: the counts are its own.
                    own = fresh_database(work)[0] if results else dsn
                    result = measure(name, own, corpus, backend, work / "encoders")
                    print(json.dumps(result), file=sys.stderr)
                    results.append(result)
        finally:
            stop_embedded(data_dir)
    print()
    first = {}
    for r in results:
        base = first.setdefault(r["corpus"], r)
        r["speedup"] = round(base["seconds"] / r["seconds"], 2)  # the same pages each run
    print(
        "| corpus | encoder | documents | pages | seconds | pages/s | × first | insights/page "
        "| concepts/page | recollections |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['corpus']} | {r['encoder']} ({r['requested']}) | {r['documents']} | {r['pages']} "
            f"| {r['seconds']} | {r['pages_per_s']} | {r['speedup']} | {r['insights_per_page']} "
            f"| {r['concepts_per_page']} | {r['recollections']} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = {"runs": results, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    (RESULTS / "distill_extractive.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'distill_extractive.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
