"""A real local model end to end: llama.cpp's server with Qwen2.5-Coder-0.5B-Instruct on the CPU
(``tests/llama_server.py``; the server and the model come from ``scripts/llama-server.sh``).

For each output mode, the example documents are ingested into a fresh database with
``openai-chat:local``; per mode: insight windows valid on the first try / after retries / never
(from the output cache, which records the requests each validated output took, and the report's
failed windows), seconds per window, tokens per page, documents ready / partial / failed, crashes.
Then questions over the documents ingested with the last mode: answered with valid citations /
partial / failed, tokens per question.

    python benchmarks/real_model.py                                   # native + prompted, 2 docs, 3 questions
    python benchmarks/real_model.py --modes native --docs handbook.md --questions 10
    python benchmarks/real_model.py --ask-only --modes auto prompted --questions 10   # ask side only

``--ask-only`` skips the real-model ingest: the documents are distilled by the extractive distiller
(all of examples/docs unless ``--docs`` names some) and the questions are asked in each mode (``auto``
researches with tools, ``prompted``/``native`` retrieve-then-answer).

Prints a table and writes benchmarks/results/real_model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from ingest_pages import RESULTS, fresh_database  # noqa: E402
from llama_server import missing, serve  # noqa: E402

QUESTIONS = [
    "Who founded Fernhollow Robotics?",
    "When will firmware 3.2 be released?",
    "Why did the Picker P4 prototype move to Q4?",
    "What are the core hours?",
    "Who leads the Software team?",
    "When will the battery cells arrive?",
    "How many people work at Fernhollow Robotics?",
    "When does the Series B funding round take place?",
    "Who leads Field Operations?",
    "Where is Fernhollow Robotics based?",
]
LIMITS = {
    "request_timeout": 120.0,
    "retries": 1,
    "output_retries": 1,
    "retry_backoff": 0.0,
    "concurrency": 1,
    "insights_max_tokens": 320,
    "concepts_max_tokens": 320,
    "abstract_max_tokens": 256,
    "answer_max_tokens": 320,
}


def windows_outcome(dsn: str) -> dict[str, int]:
    """Validated insight outputs by the requests they took (1: first try; more: after retries)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT coalesce((usage->>'requests')::int, 1) FROM llm_outputs WHERE step = 'insights'"
        ).fetchall()
    first = sum(1 for (r,) in rows if r <= 1)
    return {"first_try": first, "after_retries": len(rows) - first}


def ingest_mode(mode: str, docs: list[Path], work: Path) -> dict[str, Any]:
    from pyramid import Pyramid

    dsn, _ = fresh_database(work / mode)
    started = time.perf_counter()
    crashed = None
    with Pyramid.open(dsn=dsn, output_mode=mode, **LIMITS) as kp:
        try:
            report = kp.ingest([str(d) for d in docs], model="openai-chat:local")
        except Exception as exc:  # a crash is what this measures: record it, do not hide it
            crashed = f"{type(exc).__name__}: {exc}"
            report = None
        elapsed = time.perf_counter() - started
        views = [kp.document(str(d)) for d in docs] if report is not None else []
    pages = sum(len(v.pages) for v in views)
    windows = sum(len(v.pages) + 1 for v in views)  # [1], [1,2], …, [n]: pages + 1 windows
    outcome = windows_outcome(dsn)
    usage = report.usage if report is not None else None
    return {
        "mode": mode,
        "dsn": dsn,
        "crash": crashed,
        "documents": {s: sum(1 for v in views if v.document.status == s) for s in ("ready", "partial")},
        "failed_documents": len(report.failed) if report is not None else len(docs),
        "windows": windows,
        "valid_first_try": outcome["first_try"],
        "valid_after_retries": outcome["after_retries"],
        "never": max(0, windows - outcome["first_try"] - outcome["after_retries"]),
        "seconds": round(elapsed, 1),
        "seconds_per_window": round(elapsed / windows, 1) if windows else None,
        "tokens_per_page": round(usage.total_tokens / pages) if usage is not None and pages else None,
        "reasons": [r.reason for r in report.results if r.reason] if report is not None else [],
    }


def ask_questions(dsn: str, mode: str, questions: list[str]) -> dict[str, Any]:
    from pyramid import Pyramid

    answered = partial = failed = 0
    tokens: list[int] = []
    seconds: list[float] = []
    details = []
    with Pyramid.open(dsn=dsn, output_mode=mode, ask_answer_retries=1, **LIMITS) as kp:
        for question in questions:
            started = time.perf_counter()
            try:
                answer = kp.ask(question, model="openai-chat:local")
            except Exception as exc:  # counted as failed, with its reason
                failed += 1
                details.append({"question": question, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            seconds.append(time.perf_counter() - started)
            tokens.append(answer.usage.total_tokens)
            resolved = {c.item_id for c in answer.citations} <= {e.id for e in answer.evidence}
            if answer.partial or not answer.citations or not resolved:
                partial += 1
            else:
                answered += 1
            details.append(
                {
                    "question": question,
                    "partial": answer.partial,
                    "stopped": answer.stopped,
                    "notices": answer.notices,
                    "citations": [c.cite for c in answer.citations],
                    "rejected_citations": answer.rejected_citations,
                    "requests": answer.usage.requests,
                    "seconds": round(seconds[-1], 1),
                    "text": answer.text[:300],
                }
            )
    return {
        "mode": mode,
        "questions": len(questions),
        "answered": answered,
        "partial": partial,
        "failed": failed,
        "tokens_per_question": round(sum(tokens) / len(tokens)) if tokens else None,
        "seconds_per_question": round(sum(seconds) / len(seconds), 1) if seconds else None,
        "retrieve_then_answer": sum(1 for d in details if d.get("notices")),
        "details": details,
    }


def extractive_pyramid(docs: list[Path], work: Path) -> str:
    from pyramid import Pyramid

    dsn, _ = fresh_database(work / "extractive")
    with Pyramid.open(dsn=dsn) as kp:
        kp.ingest([str(d) for d in docs])
    return dsn


def print_asked(asked: list[dict[str, Any]], pyramid: str) -> None:
    print(f"\nask ({pyramid} pyramid)")
    print(
        "| mode | questions | answered, citations valid | partial | failed | retrieve-then-answer | tokens/question | s/question |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for a in asked:
        print(
            f"| {a['mode']} | {a['questions']} | {a['answered']} | {a['partial']} | {a['failed']} "
            f"| {a['retrieve_then_answer']} | {a['tokens_per_question']} | {a['seconds_per_question']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", nargs="+", default=["native", "prompted"])
    parser.add_argument("--docs", nargs="+", default=None, help="examples/docs files (default: two)")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--ask-only", action="store_true", help="ask over an extractive pyramid")
    args = parser.parse_args()
    reason = missing()
    if reason:
        sys.exit(f"real_model.py: {reason}")
    examples = ROOT / "examples" / "docs"
    if args.docs:
        docs = [examples / name for name in args.docs]
    elif args.ask_only:
        docs = sorted(p for p in examples.iterdir() if p.is_file())
    else:
        docs = [examples / name for name in ("meeting-notes-2031-03-03.txt", "handbook.md")]
    questions = QUESTIONS[: args.questions]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, serve(log=Path(tmp) / "server.log") as server:
        os.environ.update(server.env())
        if args.ask_only:
            dsn = extractive_pyramid(docs, Path(tmp))
            asked = [ask_questions(dsn, mode, questions) for mode in args.modes]
            pyramid = "extractive"
        else:
            runs = [ingest_mode(mode, docs, Path(tmp)) for mode in args.modes]
            asked = [ask_questions(runs[-1]["dsn"], args.modes[-1], questions)]
            pyramid = f"{args.modes[-1]}-distilled"
    if runs:
        print(
            "| mode | windows | valid 1st try | after retries | never | s/window | tokens/page | docs ready/partial/failed | crashes |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        docs_cell = f"{r['documents']['ready']}/{r['documents']['partial']}/{r['failed_documents']}"
        print(
            f"| {r['mode']} | {r['windows']} | {r['valid_first_try']} | {r['valid_after_retries']} | {r['never']} "
            f"| {r['seconds_per_window']} | {r['tokens_per_page']} | {docs_cell} | {1 if r['crash'] else 0} |"
        )
        r.pop("dsn")
    print_asked(asked, pyramid)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("real_model_ask.json" if args.ask_only else "real_model.json")
    names = [d.name for d in docs]
    out.write_text(json.dumps({"runs": runs, "ask": asked, "docs": names}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
