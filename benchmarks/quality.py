"""Retrieval quality on PhantomWiki (../shared/eval/phantomwiki-s1): recall@10 and nDCG@10 of the
supporting articles of 200 multi-hop questions, for our bm25 / vector / hybrid (RRF, weighted)
side by side with bm25s (a reference BM25) and txtai (hybrid and vector), all with the bundled
all-MiniLM-L6-v2.

    nice -n 10 python benchmarks/quality.py [--eval ../shared/eval/phantomwiki-s1]

Each article is one markdown file and becomes one document with one page (its title is the
article's `# Heading`), written with pyramid.store, so the numbers do not depend on conversion.
A hit counts for its article. Prints a table and writes benchmarks/results/quality-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
K = 10


def load(eval_dir: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    articles = {}
    for path in sorted((eval_dir / "articles").glob("*.md")):
        text = path.read_text("utf-8")
        title = text.splitlines()[0].lstrip("# ").strip()
        articles[title] = text
    questions = [
        json.loads(line) for line in (eval_dir / "questions.jsonl").read_text("utf-8").splitlines() if line
    ]
    return articles, questions


def metrics(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    seen: list[str] = []
    for title in ranked:
        if title not in seen:
            seen.append(title)
    seen = seen[:K]
    recall = len(set(seen) & relevant) / len(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, title in enumerate(seen) if title in relevant)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), K)))
    return recall, dcg / idcg


def ours(articles: dict[str, str], data_dir: Path) -> tuple[dict[str, Callable[[str], list[str]]], Any, str]:
    from pyramid import Pyramid
    from pyramid.search.hybrid import compact
    from pyramid.store import DocumentRecord, NewItem, replace_document
    from pyramid.store.database import _ensure_database, start_embedded

    server = start_embedded(data_dir).replace("/pyramid?", "/postgres?", 1)
    url = _ensure_database(server, f"quality_{uuid.uuid4().hex[:8]}")
    kp = Pyramid.open(dsn=url)
    titles = list(articles)

    async def store() -> None:
        vectors = await kp.runtime.embedder.aencode_documents([articles[t] for t in titles])
        async with kp.runtime.db.connection() as conn, conn.transaction():
            for title, vector in zip(titles, vectors, strict=True):
                source = f"/phantomwiki/{title.replace(' ', '_')}.md"
                record = DocumentRecord(
                    source=source,
                    path=source,
                    file_sha256=None,
                    sha256=None,
                    title=title,
                    format="md",
                    page_count=1,
                    paged=False,
                    status="ready",
                )
                item = NewItem(
                    key="p1", level="page", text=articles[title], ordinal=1, pages=[1], embedding=vector
                )
                await replace_document(conn, record, [item])
        await compact(kp.runtime.db)

    kp.run(store())

    def run(mode: str) -> Callable[[str], list[str]]:  # with the default fusion and weight
        return lambda q: [h.document_title or "" for h in kp.search(q, k=K, mode=mode)]

    def fused(fusion: str, weight: float) -> Callable[[str], list[str]]:
        def search(q: str) -> list[str]:
            default = kp.settings.weight_bm25
            kp.settings.weight_bm25 = weight
            try:
                return [h.document_title or "" for h in kp.search(q, k=K, mode="hybrid", fusion=fusion)]
            finally:
                kp.settings.weight_bm25 = default

        return search

    systems = {
        "pyramid bm25": run("bm25"),
        "pyramid vector": run("vector"),
        "pyramid hybrid (defaults)": run("hybrid"),
    }
    for fusion in ("rrf", "weighted"):
        for weight in SWEEP:
            systems[f"pyramid hybrid ({fusion}, weight_bm25 {weight})"] = fused(fusion, weight)
    return systems, kp, server


# Fusion weights tried. They are chosen by two-fold cross-validation over the questions (even and
# odd positions), so the weight reported for a fold was picked on the other one.
SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9)


def bm25s_system(articles: dict[str, str]) -> Callable[[str], list[str]]:
    import bm25s
    import Stemmer

    titles = list(articles)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.2, b=0.75)  # method "lucene", as ours
    retriever.index(
        bm25s.tokenize([articles[t] for t in titles], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def run(q: str) -> list[str]:
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, _ = retriever.retrieve(tokens, k=K, show_progress=False)
        return [titles[int(i)] for i in docs[0]]

    return run


def txtai_systems(articles: dict[str, str]) -> dict[str, Callable[[str], list[str]]]:
    from txtai import Embeddings

    from pyramid.embed import model_location

    titles = list(articles)
    out = {}
    for name, options in (("txtai hybrid", {"hybrid": True}), ("txtai vector", {})):
        embeddings = Embeddings(path=model_location("all-MiniLM-L6-v2"), content=False, **options)
        embeddings.index([(i, articles[t], None) for i, t in enumerate(titles)])
        out[name] = _txtai_search(embeddings, titles)
    return out


def _txtai_search(embeddings: Any, titles: list[str]) -> Callable[[str], list[str]]:
    return lambda q: [titles[int(i)] for i, _ in embeddings.search(q, K)]


def cross_validate(per_question: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    """For each fusion, pick the weight with the best nDCG@10 on one half of the questions and report
    it on the other half, next to BM25 on that half."""

    def mean(name: str, fold: int, which: int) -> float:
        values = [s[which] for i, s in enumerate(per_question[name]) if i % 2 == fold]
        return sum(values) / len(values)

    folds: list[dict[str, Any]] = []
    lines = ["", "two-fold cross-validation of the fusion weight (picked on one half, scored on the other):"]
    for fold in (0, 1):
        bm25 = (mean("pyramid bm25", fold, 0), mean("pyramid bm25", fold, 1))
        row: dict[str, Any] = {"fold": fold, "bm25": {"recall@10": bm25[0], "ndcg@10": bm25[1]}}
        for fusion in ("rrf", "weighted"):
            names = [f"pyramid hybrid ({fusion}, weight_bm25 {w})" for w in SWEEP]
            picked = max(names, key=lambda n: mean(n, 1 - fold, 1))
            row[fusion] = {
                "picked": picked,
                "recall@10": mean(picked, fold, 0),
                "ndcg@10": mean(picked, fold, 1),
            }
            lines.append(
                f"  fold {fold}: {picked:48s} recall@10 {row[fusion]['recall@10']:.4f} nDCG@10 "
                f"{row[fusion]['ndcg@10']:.4f}  (bm25 {bm25[0]:.4f} / {bm25[1]:.4f})"
            )
        folds.append(row)
    return {"folds": folds, "lines": lines}


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "phantomwiki-s1")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench" / "pg-quality")
    args = parser.parse_args()
    articles, everything = load(args.eval)
    # A question without supporting articles judges no retrieval (recall would divide by zero).
    questions = [q for q in everything if q["supporting_articles"]]
    print(
        f"{len(articles)} articles, {len(questions)} of {len(everything)} questions have supporting articles "
        f"({args.eval.name})",
        flush=True,
    )
    systems, kp, server = ours(articles, args.data_dir)
    systems["bm25s (lucene, english stemmer + stop-words)"] = bm25s_system(articles)
    systems.update(txtai_systems(articles))
    results: dict[str, dict[str, float]] = {}
    per_question: dict[str, list[tuple[float, float]]] = {}
    for name, run in systems.items():
        started = time.perf_counter()
        scores = per_question[name] = [
            metrics(run(q["question"]), set(q["supporting_articles"])) for q in questions
        ]
        results[name] = {
            "recall@10": sum(r for r, _ in scores) / len(scores),
            "ndcg@10": sum(n for _, n in scores) / len(scores),
            "ms_per_query": (time.perf_counter() - started) * 1000 / len(questions),
        }
        print(
            f"  {name:48s} recall@10 {results[name]['recall@10']:.4f}  nDCG@10 {results[name]['ndcg@10']:.4f}",
            flush=True,
        )
    database = kp.url.split("?")[0].rsplit("/", 1)[-1]
    kp.close()
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:  # a fresh database each run; drop it
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    cross = cross_validate(per_question)
    for line in cross["lines"]:
        print(line)
    out = ROOT / "benchmarks" / "results" / f"quality-{args.eval.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "eval": args.eval.name,
                "questions": len(questions),
                "k": K,
                "results": results,
                "cross_validated": cross["folds"],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\n| system | recall@{K} | nDCG@{K} | ms/query |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} | {r['ms_per_query']:.1f} |")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
