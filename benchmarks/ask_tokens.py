"""The pyramid's token saving when answering: what the answer step is sent (the question and the
reranked pyramid evidence) versus what it would be sent with the raw text of the very pages it cites.

    python benchmarks/ask_tokens.py                    # the example documents in examples/docs
    python benchmarks/ask_tokens.py --docs my/folder --questions my-questions.txt

The repository's example documents are ingested (and distilled) into a fresh database; each question
is asked with a scripted FunctionModel that researches like a careful agent (search the question,
note the best items, stop) and answers by citing the best evidence. Then the same answer step is run
again with the evidence replaced by the raw text of the pages the answer cites, same instructions, same
question, same packaging. Tokens are PydanticAI's count for the FunctionModel (words and punctuation),
the same measure on both sides. Prints a table and writes benchmarks/results/ask_tokens.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ingest_pages import RESULTS, fresh_database

ROOT = Path(__file__).resolve().parent.parent
# Fact questions whose answers lie on one or two pages, and two that need several documents.
QUESTIONS = [
    "When does the Holm Orchards pilot start?",
    "How big is the battery of the Picker P3?",
    "What is the top speed of a robot in orchard mode?",
    "Who reviews the incident log, and how often?",
    "Why was the Picker P4 prototype moved to Q4?",
    "How many apples per hour did the robots pick in the Holm Orchards pilot?",
    "Which firmware does the Sandvik test robot run, and why?",
    "Who leads Field Operations?",
    "What happened to the Series B funding round, and why?",
    "Compare the Picker P3 with the Picker P2.",
]


def scripted_model() -> Any:
    """A FunctionModel that researches and answers the same way for every question: search the
    question, note the three best items, stop; answer with one sentence per evidence item it cites
    (the three best), each with the item's own citation."""
    from ask_helpers import tool_returns  # the test suite's reader of tool results
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def returned(messages: list[ModelMessage], tool: str) -> Any:
        parts = tool_returns(messages, tool)
        return parts[-1].content if parts else None

    def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        question = next(p.content for p in messages[0].parts if type(p).__name__ == "UserPromptPart")
        if "evidence" in [t.name for t in info.function_tools]:
            items = returned(messages, "evidence")["items"][:3]
            return ModelResponse(parts=[TextPart(" ".join(f"{i['text']} {i['cite']}" for i in items))])
        hits = returned(messages, "search")
        if hits is None:
            return ModelResponse(parts=[ToolCallPart("search", {"query": question, "k": 8})])
        if returned(messages, "note") is None and hits:
            best = hits[:3]
            return ModelResponse(
                parts=[
                    ToolCallPart(
                        "note",
                        {"text": " ".join(h["text"] for h in best), "item_ids": [h["id"] for h in best]},
                    )
                ]
            )
        return ModelResponse(parts=[TextPart("The notes answer the question.")])

    return FunctionModel(play, model_name="scripted-researcher")


def cited_pages(kp: Any, answer: Any) -> list[Any]:
    """The raw pages the answer cites, as evidence items (each once)."""
    from pyramid.search.evidence import Labels, load

    wanted: dict[int, set[int]] = {}
    for citation in answer.citations:
        item = next(e for e in answer.evidence if e.id == citation.item_id)
        if item.document_id is not None:
            wanted.setdefault(item.document_id, set()).update(citation.pages)
    ids = [p.id for doc_id, pages in wanted.items() for p in kp.document(doc_id).pages if p.ordinal in pages]

    async def read() -> list[Any]:
        async with kp.runtime.db.connection() as conn:
            found = await load(conn, ids, Labels())
        return [found[i] for i in ids]

    return kp.run(read())


def answer_step_tokens(kp: Any, question: str, items: list[Any]) -> int:
    """Input tokens of the answer step sent ``items`` as its evidence (one request)."""
    from pydantic_ai.usage import RunUsage

    from pyramid.agents.answer import AnswerDeps, EvidencePack, build_answer_agent, evidence_history

    pack = EvidencePack(items=items)
    usage = RunUsage()

    async def run() -> None:
        await build_answer_agent().run(
            None,
            message_history=evidence_history(question, pack),
            deps=AnswerDeps(pack),
            model=scripted_model(),
            usage=usage,
        )

    kp.run(run())
    assert usage.requests == 1
    return usage.input_tokens


def measure(kp: Any, questions: list[str]) -> list[dict[str, Any]]:
    rows = []
    for question in questions:
        answer = kp.ask(question, model=scripted_model())
        pages = cited_pages(kp, answer)
        pyramid, raw = answer.answer_usage.input_tokens, answer_step_tokens(kp, question, pages)
        rows.append(
            {
                "question": question,
                "citations": [c.cite for c in answer.citations],
                "evidence_items": len(answer.evidence),
                "evidence_levels": sorted({e.level for e in answer.evidence}),
                "evidence_chars": sum(len(e.text) for e in answer.evidence),
                "cited_pages": len(pages),
                "cited_page_chars": sum(len(p.text) for p in pages),
                "answer_input_tokens": pyramid,
                "raw_pages_input_tokens": raw,
                "ratio": round(pyramid / raw, 3),
                "ask_requests": answer.usage.requests,
                "ask_tokens": answer.usage.total_tokens,
            }
        )
    return rows


def item_counts(kp: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for doc in kp.documents():
        for level, n in doc.items.items():
            counts[level] = counts.get(level, 0) + n
    if set(counts) <= {"page"}:
        sys.exit(
            "error: the pyramid has only pages (no distiller ran); this benchmark needs the levels above"
        )
    return counts


def synthetic_questions(kp: Any, n: int, seed: int = 11) -> list[str]:
    """Questions made from sentences of the corpus: "What is said about <its last four words>?"."""
    import random

    rng = random.Random(seed)
    pages = [p.text for d in kp.documents() for p in kp.document(d.id).pages]
    questions = []
    for text in rng.sample(pages, n):
        sentences = [s for s in text.split(". ") if len(s.split()) > 8 and not s.startswith(("#", "|", "-"))]
        words = rng.choice(sentences).rstrip(".").split()
        questions.append(f"What is said about the {' '.join(words[-4:])}?")
    return questions


def run_corpus(docs: Path, dsn: str, questions: list[str] | int) -> dict[str, Any]:
    from pyramid import Pyramid

    with Pyramid.open(dsn=dsn) as kp:
        report = kp.ingest([docs])
        assert report.ok, report.failed
        counts = item_counts(kp)
        pages = [len(p.text) for d in kp.documents() for p in kp.document(d.id).pages]
        asked = synthetic_questions(kp, questions) if isinstance(questions, int) else questions
        rows = measure(kp, asked)
    total_pyramid = sum(r["answer_input_tokens"] for r in rows)
    total_pages = sum(r["raw_pages_input_tokens"] for r in rows)
    return {
        "documents": str(docs.relative_to(ROOT) if docs.is_relative_to(ROOT) else docs.name),
        "pages": len(pages),
        "median_page_chars": round(statistics.median(pages)),
        "items": counts,
        "questions": len(rows),
        "answer_input_tokens": total_pyramid,
        "raw_pages_input_tokens": total_pages,
        "ratio": round(total_pyramid / total_pages, 3),
        "median_ratio": round(statistics.median(r["ratio"] for r in rows), 3),
        "rows": rows,
    }


def print_table(result: dict[str, Any], *, per_question: bool) -> None:
    print(
        f"\n{result['documents']}: {result['pages']} pages (median {result['median_page_chars']:,} characters), "
        f"items {result['items']}"
    )
    print(
        "| question | cites | cited pages (chars) | evidence items (chars) | answer step tokens: pyramid evidence "
        "| the raw cited pages | ratio | whole ask: requests, tokens |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in result["rows"] if per_question else []:
        print(
            f"| {r['question']} | {' '.join(r['citations'])} | {r['cited_pages']} ({r['cited_page_chars']:,}) "
            f"| {r['evidence_items']} ({r['evidence_chars']:,}) | {r['answer_input_tokens']:,} "
            f"| {r['raw_pages_input_tokens']:,} | {r['ratio']:.2f} | {r['ask_requests']}, {r['ask_tokens']:,} |"
        )
    print(
        f"| **all {result['questions']}** | | | | **{result['answer_input_tokens']:,}** "
        f"| **{result['raw_pages_input_tokens']:,}** | **{result['ratio']:.2f}** (median {result['median_ratio']:.2f}) | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "examples" / "docs")
    parser.add_argument(
        "--questions", type=Path, help="one question per line (default: ten about examples/docs)"
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=20,
        metavar="FILES",
        help="also measure a generated corpus of FILES files × 8 pages of ~3,000 characters (0: skip)",
    )
    parser.add_argument("--synthetic-questions", type=int, default=10)
    parser.add_argument("--dsn", help="use this PostgreSQL instead of a throw-away embedded one")
    args = parser.parse_args()
    questions = args.questions.read_text("utf-8").split("\n") if args.questions else QUESTIONS
    questions = [q.strip() for q in questions if q.strip()]

    from corpus import write_markdown_corpus

    from pyramid.store.database import stop_embedded

    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        work = Path(tmp)
        results = []
        data_dir = None
        try:
            dsn, data_dir = (args.dsn, None) if args.dsn else fresh_database(work)
            results.append(run_corpus(args.docs, dsn, questions))
            if args.synthetic:
                corpus = work / "synthetic-long-pages"
                write_markdown_corpus(corpus, files=args.synthetic, sections=8)
                dsn, _ = (args.dsn, None) if args.dsn else fresh_database(work)
                results.append(run_corpus(corpus, dsn, args.synthetic_questions))
        finally:
            if data_dir is not None:
                stop_embedded(data_dir)

    for n, result in enumerate(results):
        print_table(result, per_question=n == 0)
    output = {
        "token_measure": "PydanticAI FunctionModel usage (words and punctuation), the same on both sides",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "corpora": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ask_tokens.json").write_text(json.dumps(output, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'ask_tokens.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
