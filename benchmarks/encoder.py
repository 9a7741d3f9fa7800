"""Encoder backends side by side on the same texts: torch fp32 (sentence-transformers), ONNX fp32
and ONNX int8 (ONNX Runtime + tokenizers), all from the bundled all-MiniLM-L6-v2.

    python benchmarks/encoder.py                        # 256 pages, 1,024 sentences
    python benchmarks/encoder.py --pages 1000 --sentences 4000

Each backend runs in its own process (so peak memory is its own and no library warms another),
loads and warms up before the clock starts, then encodes the pages (~3,000-character sections,
cut at the model's 256 tokens as in ingest) and the sentences (insight-sized) at batch size 32.
The ONNX exports are made first, into a throw-away cache. Prints a table and writes
benchmarks/results/encoder.json.

OpenVINO is not measured: sentence-transformers' OpenVINO backend needs optimum-intel, whose newest
release (2.2.0) requires transformers >=4.51,<5.6 while this project runs transformers 5.24 (and
sentence-transformers 6 needs transformers 5): installing it would downgrade transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
BACKENDS = [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]


def texts(pages: int, sentences: int) -> tuple[list[str], list[str]]:
    from corpus import TextMaker

    maker = TextMaker(11)
    page_texts = [maker.section(3000) for _ in range(pages)]
    rng = random.Random(5)
    words = " ".join(page_texts).split()
    sentence_texts = []
    for _ in range(sentences):
        start = rng.randrange(0, len(words) - 30)
        sentence_texts.append(" ".join(words[start : start + rng.randint(8, 24)]) + ".")
    return page_texts, sentence_texts


def peak_rss_mb() -> int:
    # VmHWM belongs to this process's own address space since exec; ru_maxrss of a child can carry
    # the parent's peak (here the parent ran the torch-based exports), which read 1,045 MB for all.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_one(backend: str, precision: str, pages: int, sentences: int, cache: str, batch: int) -> dict:
    from pyramid.embed import Embedder

    page_texts, sentence_texts = texts(pages, sentences)
    embedder = Embedder(backend=backend, precision=precision, cache_dir=Path(cache), batch_size=batch)
    started = time.perf_counter()
    embedder.encode_documents(page_texts[:32])  # load and warm up
    load = time.perf_counter() - started
    t0 = time.perf_counter()
    embedder.encode_documents(page_texts)
    page_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.encode_documents(sentence_texts)
    sentence_s = time.perf_counter() - t0
    return {
        "backend": backend,
        "precision": precision,
        "load_and_warm_s": round(load, 2),
        "pages_per_s": round(pages / page_s, 1),
        "sentences_per_s": round(sentences / sentence_s, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=256)
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # backend/precision: run in this process
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        backend, precision = args.one.split("/")
        print(
            json.dumps(run_one(backend, precision, args.pages, args.sentences, args.cache, args.batch_size))
        )
        return

    from pyramid.embed import model_location
    from pyramid.onnx_export import ensure

    rows = []
    with tempfile.TemporaryDirectory(prefix="kp-encoders-") as cache:
        for precision in ("fp32", "int8"):
            started = time.perf_counter()
            ensure(
                model_name="all-MiniLM-L6-v2",
                location=model_location("all-MiniLM-L6-v2"),
                cache_root=Path(cache),
                precision=precision,
            )
            print(f"exported onnx {precision} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        for backend, precision in BACKENDS:
            done = subprocess.run(
                [sys.executable, __file__, "--one", f"{backend}/{precision}", "--cache", cache,
                 "--pages", str(args.pages), "--sentences", str(args.sentences),
                 "--batch-size", str(args.batch_size)],
                capture_output=True, text=True, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], file=sys.stderr)
    base = rows[0]
    for row in rows:
        row["pages_speedup"] = round(row["pages_per_s"] / base["pages_per_s"], 2)
        row["sentences_speedup"] = round(row["sentences_per_s"] / base["sentences_per_s"], 2)
    print("\n| backend | precision | pages/s | × torch | sentences/s | × torch | peak RSS MB | load s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['precision']} | {r['pages_per_s']} | {r['pages_speedup']} | "
            f"{r['sentences_per_s']} | {r['sentences_speedup']} | {r['peak_rss_mb']} | {r['load_and_warm_s']} |"
        )
    result = {
        "pages": args.pages,
        "sentences": args.sentences,
        "batch_size": args.batch_size,
        "rows": rows,
        "openvino": "not measured: optimum-intel 2.2.0 requires transformers<5.6 (this project: 5.24)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encoder.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'encoder.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
