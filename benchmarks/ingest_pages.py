"""Page pipeline throughput: `pyramid ingest` end to end (pages only, no distillation) versus bare
`SentenceTransformer.encode` on the same page texts, in the same run.

    python benchmarks/ingest_pages.py                 # 250 files × 8 pages = 2,000 pages
    python benchmarks/ingest_pages.py --files 500     # more

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=250)
    parser.add_argument("--sections", type=int, default=8, help="pages per file")
    parser.add_argument("--dsn", help="use this PostgreSQL instead of a throw-away embedded one")
    parser.add_argument("--corpus", type=Path, help="where to write the corpus (default: a temp dir)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--embedding-backend", default="auto", help="auto, torch or onnx")
    parser.add_argument("--out", default="ingest_pages.json", help="file name under benchmarks/results")
    args = parser.parse_args()

    from pyramid import Pyramid
    from pyramid.embed import model_location
    from pyramid.store.database import stop_embedded

    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        work = Path(tmp)
        corpus = args.corpus or work / "corpus"
        started = time.perf_counter()
        files = write_markdown_corpus(corpus, files=args.files, sections=args.sections)
        print(
            f"corpus: {len(files)} files in {time.perf_counter() - started:.1f}s at {corpus}", file=sys.stderr
        )
        dsn, data_dir = (args.dsn, None) if args.dsn else fresh_database(work)
        try:
            with Pyramid.open(
                dsn=dsn,
                embedding_batch_size=args.batch_size,
                embedding_backend=args.embedding_backend,
                encoder_cache_dir=work / "encoders",
            ) as kp:
                # Load the model before the clock starts: both sides are measured warm.
                kp.run(kp.runtime.embedder.aload())
                report = kp.ingest([corpus], distill=False)  # the page pipeline alone
                assert report.ok, report.failed
                pages = [p.text for d in kp.documents() for p in kp.document(d.id).pages]
                embedder = kp.runtime.embedder
                backend, precision = embedder.backend, embedder.precision
            pipeline_pages = sum(r.pages for r in report.results)
            # Bare encoder on the very same page texts, same model object, same batch size.
            embedder.encode_documents(pages[:64])
            bare_started = time.perf_counter()
            embedder.encode_documents(pages)
            bare = time.perf_counter() - bare_started
        finally:
            if data_dir is not None:
                stop_embedded(data_dir)

    pipeline_rate = pipeline_pages / report.elapsed
    bare_rate = len(pages) / bare
    result = {
        "files": len(files),
        "pages": pipeline_pages,
        "mean_page_chars": round(sum(map(len, pages)) / len(pages)),
        "pipeline_seconds": round(report.elapsed, 2),
        "pipeline_pages_per_s": round(pipeline_rate, 1),
        "bare_encode_seconds": round(bare, 2),
        "bare_encode_pages_per_s": round(bare_rate, 1),
        "ratio": round(pipeline_rate / bare_rate, 3),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(report.timings.items())},
        "batch_size": args.batch_size,
        "embedding_backend": backend,
        "embedding_precision": precision,
        "encoder": report.summary()["encoder"],
        "model": str(model_location("all-MiniLM-L6-v2")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print()
    print(
        "| pages | pipeline pages/s | bare encode pages/s | ratio | convert s | embed s | write s | hash s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    st = result["stage_seconds"]
    print(
        f"| {pipeline_pages} | {pipeline_rate:.1f} | {bare_rate:.1f} | {pipeline_rate / bare_rate:.0%} "
        f"| {st.get('convert', 0):.1f} | {st.get('embed', 0):.1f} | {st.get('write', 0):.1f} | {st.get('hash', 0):.1f} |"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
