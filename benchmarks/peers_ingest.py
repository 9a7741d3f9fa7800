"""Pages only, same files, same model: `pyramid ingest --no-distill` against LlamaIndex's
`IngestionPipeline` and haiku.rag, each in a fresh process, in one run.

    python benchmarks/peers_ingest.py \\
        --llamaindex-python /work/peers-venv/bin/python --haiku-python /work/peers-venv-312/bin/python
    python benchmarks/peers_ingest.py --files 200        # the first 200 articles (sorted by name)

The files are the shared PhantomWiki articles (../shared/eval/phantomwiki-s1/articles, short
one-page markdown biographies); every system embeds them with the bundled all-MiniLM-L6-v2 from the
same folder on disk, on the CPU, at batch size 32, and stores the vectors:

- pyramid: the CLI, `pyramid ingest DIR --no-distill --json`, into a fresh embedded PostgreSQL
  (started and migrated before the clock, as it is for a user after the first command), once with
  the default encoder (int8 ONNX, exported before the clock: that happens once per data dir) and
  once with `--embedding-backend torch`;
- LlamaIndex: `SimpleDirectoryReader` → `IngestionPipeline([SentenceSplitter(), HuggingFaceEmbedding])`
  into a `SimpleVectorStore` persisted to disk (its own venv: llama-index-core,
  llama-index-embeddings-huggingface);
- haiku.rag (haiku-rag-slim[docling], Python ≥ 3.12, LanceDB): `HaikuRAG.create_document_from_source`
  per file with its `sentence-transformers` embedding provider (its own venv).

"process s" is the wall time of the whole process (imports, model load, ingest, store); "ingest s"
is the part after the model is loaded, as each process measures it. A peer whose interpreter is not
given is left out of the table. Prints a table and writes benchmarks/results/peers_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ARTICLES = ROOT.parent / "shared" / "eval" / "phantomwiki-s1" / "articles"
BATCH = 32


# -- the peers, run inside their own interpreters (no pyramid import here) -------------------------
def run_llamaindex(corpus: Path, model: str, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    embed = HuggingFaceEmbedding(model_name=model, device="cpu", embed_batch_size=BATCH)
    embed.get_text_embedding("warm up")
    loaded = time.perf_counter()
    documents = SimpleDirectoryReader(str(corpus), required_exts=[".md"]).load_data()
    store = SimpleVectorStore()
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(), embed], vector_store=store)
    nodes = pipeline.run(documents=documents)
    store.persist(persist_path=str(work / "llamaindex" / "vector_store.json"))
    done = time.perf_counter()
    return {
        "documents": len(documents),
        "chunks": len(nodes),
        "load_s": round(loaded - started, 2),
        "ingest_s": round(done - loaded, 2),
    }


def run_haiku(corpus: Path, model: str, work: Path) -> dict[str, Any]:
    import asyncio

    started = time.perf_counter()
    from haiku.rag.client import HaikuRAG
    from haiku.rag.config import AppConfig

    config = AppConfig.model_validate(
        {
            "embeddings": {
                "model": {"provider": "sentence-transformers", "name": model, "vector_dim": 384},
                "batch_size": BATCH,
            },
            # Its docling chunker counts tokens with the embedding model's own tokenizer (the
            # default names a hub model), and markdown articles have no pictures.
            "processing": {"chunking_tokenizer": model, "pictures": "none"},
        }
    )

    async def ingest() -> dict[str, Any]:
        files = sorted(corpus.glob("*.md"))
        (work / "haiku").mkdir(parents=True, exist_ok=True)
        async with HaikuRAG(work / "haiku" / "db.lancedb", config=config, create=True) as rag:
            # Load the model and the converter before the clock, as for the others.
            warm = work / "haiku-warm.md"
            warm.write_text("# Warm up\n\nOne sentence.")
            await rag.create_document_from_source(warm)
            loaded = time.perf_counter()
            documents = [await rag.create_document_from_source(path) for path in files]
            done = time.perf_counter()
        return {
            "documents": len(documents),
            "chunks": None,
            "load_s": round(loaded - started, 2),
            "ingest_s": round(done - loaded, 2),
        }

    return asyncio.run(ingest())


# -- pyramid, through its CLI ----------------------------------------------------------------------
def run_pyramid(corpus: Path, work: Path, backend: str, cache: Path) -> dict[str, Any]:
    data_dir = work / f"pyramid-{backend}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYRAMID_ENCODER_CACHE_DIR": str(cache),
        "PYRAMID_EMBEDDING_BATCH_SIZE": str(BATCH),
        "TOKENIZERS_PARALLELISM": "false",
    }
    base = [sys.executable, "-m", "pyramid", "--data-dir", str(data_dir)]
    subprocess.run([*base, "db", "start"], env=env, check=True, capture_output=True, text=True)
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [*base, "ingest", str(corpus), "--no-distill", "--json", "--embedding-backend", backend],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        process_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"pyramid ingest failed ({done.returncode}): {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)
    finally:
        subprocess.run([*base, "db", "stop"], env=env, capture_output=True, text=True)
    encoder = summary["encoder"]
    return {
        "system": f"pyramid ingest --no-distill ({encoder['backend']} {encoder['precision']})",
        "documents": summary["counts"]["added"],
        "chunks": summary["pages"],
        "process_s": round(process_s, 2),
        "ingest_s": round(summary["elapsed"], 2),
    }


def run_peer(python: str, name: str, corpus: Path, model: str, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--one", name, "--corpus", str(corpus), "--model", model, "--work", str(work)],
        capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        return {
            "system": name,
            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed",
        }
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {"system": name, **row, "process_s": round(process_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=Path, default=ARTICLES)
    parser.add_argument("--files", type=int, default=0, help="the first N articles (default: all)")
    parser.add_argument(
        "--llamaindex-python", help="interpreter with llama-index-core and -embeddings-huggingface"
    )
    parser.add_argument("--haiku-python", help="interpreter (Python >= 3.12) with haiku-rag-slim")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run = {"llamaindex": run_llamaindex, "haiku.rag": run_haiku}[args.one]
        print(json.dumps(run(args.corpus, args.model, args.work)))
        return

    sys.path.insert(0, str(ROOT))
    from pyramid.embed import model_location
    from pyramid.onnx_export import ensure

    model = model_location("all-MiniLM-L6-v2")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kp-peers-") as tmp:
        work = Path(tmp)
        corpus = work / "articles"
        corpus.mkdir()
        files = sorted(args.articles.glob("*.md"))
        for path in files[: args.files or None]:
            shutil.copy(path, corpus / path.name)
        count = len(list(corpus.iterdir()))
        print(f"{count} articles from {args.articles}", file=sys.stderr)
        cache = work / "encoders"
        ensure(model_name="all-MiniLM-L6-v2", location=model, cache_root=cache, precision="int8")
        for backend in ("auto", "torch"):
            rows.append(run_pyramid(corpus, work, backend, cache))
            print(json.dumps(rows[-1]), file=sys.stderr)
        for name, python in (("llamaindex", args.llamaindex_python), ("haiku.rag", args.haiku_python)):
            if python:
                rows.append(run_peer(python, name, corpus, model, work))
                print(json.dumps(rows[-1]), file=sys.stderr)
    print("\n| system | documents | chunks | ingest s | process s | pages/s (ingest) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['system']} | failed: {r['error']} | | | | |")
            continue
        print(
            f"| {r['system']} | {r['documents']} | {r['chunks'] or '–'} | {r['ingest_s']} | {r['process_s']} "
            f"| {r['documents'] / r['ingest_s']:.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    result = {
        "articles": count,
        "model": str(model),
        "batch_size": BATCH,
        "rows": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    (RESULTS / "peers_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'peers_ingest.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
