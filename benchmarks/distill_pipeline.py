"""LLM pipeline efficiency: does distillation keep the model busy?

A scripted PydanticAI FunctionModel answers every call after sleeping L seconds (asyncio.sleep), so
with C documents distilled at once the model can be called at most C/L times a second. The run
ingests a corpus end to end (convert, embed pages, distil, embed items, write) and measures the
LLM calls per second actually achieved while documents were being distilled, against that limit.
Anything that serialises the model calls behind embedding or database writes shows up as a lower
ratio.

    python benchmarks/distill_pipeline.py                      # 256 files × 2 pages, C = 8 and 32
    python benchmarks/distill_pipeline.py --files 400 --latency 0.5 --concurrency 8 32

Prints a table and writes benchmarks/results/distill_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from corpus import write_markdown_corpus  # noqa: E402
from ingest_pages import RESULTS, fresh_database  # noqa: E402
from scripted import Scripted  # noqa: E402  (the scripted model of the test suite, with a delay)


def run(dsn: str, corpus: Path, *, concurrency: int, latency: float, page_chars: int) -> dict[str, Any]:
    from pyramid import Pyramid

    brain = Scripted(delay=latency)
    with Pyramid.open(dsn=dsn, page_chars=page_chars) as kp:
        kp.run(kp.runtime.embedder.aload())
        # A model name per run: the output cache keys on it, so no run is answered from another's.
        report = kp.ingest(
            [corpus], model=brain.model(f"sleep-{concurrency}"), concurrency=concurrency, force=True
        )
        assert report.ok, report.failed
    spans = [(c.agent, c.started, c.ended) for c in brain.calls]
    document_calls = [(s, e) for agent, s, e in spans if agent != "recollections"]
    windows = sum(1 for agent, _, _ in spans if agent == "insights")
    first = min(s for s, _ in document_calls)
    last = max(e for _, e in document_calls)
    span = last - first
    limit = concurrency / latency
    rate = len(document_calls) / span
    return {
        "concurrency": concurrency,
        "latency_s": latency,
        "documents": len(report.results),
        "pages": sum(r.pages for r in report.results),
        "llm_calls": len(document_calls),
        "window_calls": windows,
        "distill_span_s": round(span, 2),
        "calls_per_s": round(rate, 2),
        "windows_per_s": round(windows / span, 2),
        "limit_calls_per_s": round(limit, 2),
        "efficiency": round(rate / limit, 3),
        "ingest_s": round(report.elapsed, 2),
        "recollection_calls": sum(1 for agent, _, _ in spans if agent == "recollections"),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(report.timings.items())},
    }


def _replace_encoder() -> None:
    import numpy as np

    from pyramid.embed import Embedder

    async def random_vectors(self: Embedder, texts: Any) -> Any:
        vectors = np.random.default_rng(0).random((len(texts), self.dimension), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    Embedder.aencode_documents = random_vectors  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=256)
    parser.add_argument("--pages", type=int, default=2, help="pages per file")
    parser.add_argument(
        "--page-chars", type=int, default=400, help="page size cap (short pages keep the encoder ahead)"
    )
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the model sleeps per call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--dsn", help="use this PostgreSQL instead of a throw-away embedded one")
    parser.add_argument(
        "--control-no-encoder",
        action="store_true",
        help="control run: random unit vectors instead of the encoder, to tell the pipeline's own overhead "
        "from CPU contention with the encoder (results go to distill_pipeline_control.json)",
    )
    args = parser.parse_args()
    if args.control_no_encoder:
        _replace_encoder()

    from pyramid.store.database import stop_embedded

    results = []
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        work = Path(tmp)
        # Sections a little shorter than the page cap: every section is one page.
        files = write_markdown_corpus(
            work / "corpus", files=args.files, sections=args.pages, section_chars=args.page_chars - 100
        )
        print(f"corpus: {len(files)} files × {args.pages} pages", file=sys.stderr)
        dsn, data_dir = (args.dsn, None) if args.dsn else fresh_database(work)
        try:
            for concurrency in args.concurrency:
                result = run(
                    dsn,
                    work / "corpus",
                    concurrency=concurrency,
                    latency=args.latency,
                    page_chars=args.page_chars,
                )
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
        finally:
            if data_dir is not None:
                stop_embedded(data_dir)
    print()
    print(
        "| C | L (s) | documents | LLM calls | windows | span (s) | calls/s | windows/s | limit C/L | efficiency |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['concurrency']} | {r['latency_s']} | {r['documents']} | {r['llm_calls']} | {r['window_calls']} "
            f"| {r['distill_span_s']} | {r['calls_per_s']} | {r['windows_per_s']} | {r['limit_calls_per_s']} "
            f"| {r['efficiency']:.0%} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "runs": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "files": args.files,
        "pages_per_file": args.pages,
    }
    name = "distill_pipeline_control.json" if args.control_no_encoder else "distill_pipeline.json"
    out["encoder"] = "random vectors (control)" if args.control_no_encoder else "all-MiniLM-L6-v2"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {RESULTS / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
