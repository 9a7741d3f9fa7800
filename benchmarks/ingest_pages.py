"""Page pipeline throughput: `pyramid ingest` end to end (pages only, no distillation) versus the
bare encoder on the same page texts, for each encoder backend in turn on the same files, in one run.

    python benchmarks/ingest_pages.py                 # 250 files × 8 pages = 2,000 pages; torch, then auto
    python benchmarks/ingest_pages.py --files 60 --embedding-backend torch,auto,onnx

Prints a table and writes benchmarks/results/ingest_pages.json. Uses a fresh database in a
throw-away embedded PostgreSQL (or --dsn).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import write_markdown_corpus  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def fresh_database(work: Path) -> tuple[str, Path]:
    import psycopg

    from pyramid.store.database import start_embedded

    data_dir = work / "kp"
    url = start_embedded(data_dir)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server = url.replace("/pyramid?", "/postgres?", 1)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.replace("/postgres?", f"/{name}?", 1), data_dir


def measure(dsn: str, corpus: Path, backend: str, batch_size: int, cache: Path) -> dict:
    """Ingest ``corpus`` (pages only) into ``dsn`` with one encoder backend, then encode the very
    same page texts with the bare encoder (same model object, same batch size)."""
    from pyramid import Pyramid

    with Pyramid.open(
        dsn=dsn, embedding_batch_size=batch_size, embedding_backend=backend, encoder_cache_dir=cache
    ) as kp:
        # Load and warm the model before the clock starts: both sides are measured warm.
        kp.run(kp.runtime.embedder.aencode_documents(["Warm up the encoder."] * 64))
        report = kp.ingest([corpus], distill=False)  # the page pipeline alone
        assert report.ok, report.failed
        pages = [p.text for d in kp.documents() for p in kp.document(d.id).pages]
        embedder = kp.runtime.embedder
        resolved, precision = embedder.backend, embedder.precision
    pipeline_pages = sum(r.pages for r in report.results)
    embedder.encode_documents(pages[:64])
    bare_started = time.perf_counter()
    embedder.encode_documents(pages)
    bare = time.perf_counter() - bare_started
    pipeline_rate = pipeline_pages / report.elapsed
    bare_rate = len(pages) / bare
    return {
        "requested": backend,
        "embedding_backend": resolved,
        "embedding_precision": precision,
        "pages": pipeline_pages,
        "mean_page_chars": round(sum(map(len, pages)) / len(pages)),
        "pipeline_seconds": round(report.elapsed, 2),
        "pipeline_pages_per_s": round(pipeline_rate, 1),
        "bare_encode_seconds": round(bare, 2),
        "bare_encode_pages_per_s": round(bare_rate, 1),
        "ratio": round(pipeline_rate / bare_rate, 3),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(report.timings.items())},
        "encoder": report.summary()["encoder"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=250)
    parser.add_argument("--sections", type=int, default=8, help="pages per file")
    parser.add_argument("--dsn", help="use this (empty) database instead of a throw-away embedded server")
    parser.add_argument("--corpus", type=Path, help="where to write the corpus (default: a temp dir)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--embedding-backend",
        default="torch,auto",
        help="backends to run in turn on the same files, each into a fresh database (auto, torch, onnx)",
    )
    parser.add_argument("--out", default="ingest_pages.json", help="file name under benchmarks/results")
    args = parser.parse_args()

    from pyramid.embed import model_location
    from pyramid.store.database import stop_embedded

    backends = [b.strip() for b in args.embedding_backend.split(",") if b.strip()]
    if args.dsn and len(backends) > 1:
        parser.error("--dsn takes one --embedding-backend: each backend needs its own fresh database")
    runs = []
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        work = Path(tmp)
        corpus = args.corpus or work / "corpus"
        started = time.perf_counter()
        files = write_markdown_corpus(corpus, files=args.files, sections=args.sections)
        print(
            f"corpus: {len(files)} files in {time.perf_counter() - started:.1f}s at {corpus}", file=sys.stderr
        )
        data_dir = None
        try:
            for backend in backends:
                if args.dsn:
                    dsn = args.dsn
                else:
                    dsn, data_dir = fresh_database(work)  # the same server, a new database each
                run = measure(dsn, corpus, backend, args.batch_size, work / "encoders")
                print(json.dumps(run), file=sys.stderr)
                runs.append(run)
        finally:
            if data_dir is not None:
                stop_embedded(data_dir)

    base = runs[0]
    for run in runs:
        # From the seconds (the same pages each run), not from the rounded rates.
        run["pipeline_speedup"] = round(base["pipeline_seconds"] / run["pipeline_seconds"], 2)
        run["bare_speedup"] = round(base["bare_encode_seconds"] / run["bare_encode_seconds"], 2)
    result = {
        "files": len(files),
        "batch_size": args.batch_size,
        "runs": runs,
        "model": str(model_location("all-MiniLM-L6-v2")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print()
    print(
        f"| encoder | pages | pipeline pages/s | × {base['embedding_backend']} | bare encode pages/s "
        "| pipeline / bare | convert s | embed s | write s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        st = r["stage_seconds"]
        print(
            f"| {r['embedding_backend']} {r['embedding_precision']} ({r['requested']}) | {r['pages']} "
            f"| {r['pipeline_pages_per_s']} | {r['pipeline_speedup']} | {r['bare_encode_pages_per_s']} "
            f"| {r['ratio']:.0%} | {st.get('convert', 0):.1f} | {st.get('embed', 0):.1f} | {st.get('write', 0):.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
