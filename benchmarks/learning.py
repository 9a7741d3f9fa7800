"""What `ask --learn` buys on the shared PhantomWiki universe: questions are asked with --learn, then
related held-apart questions (sharing two or more supporting articles with a learned one) are asked
before and after, and compared.

    nice -n 10 python benchmarks/learning.py [--eval ../shared/eval/phantomwiki-s1] [--pairs 50] [--extra 200]

The supporting articles of the chosen questions, plus ``--extra`` other articles, are ingested for real
(MarkItDown, the extractive distiller) into a fresh database. Every question is asked with the same
scripted FunctionModel, which answers from the gold evidence:

- research: search the question; if a hit is a learned recollection resting on one of its supporting
  articles, stop (it answers); otherwise search the names of up to four supporting articles, stop;
- answer: cite a learned recollection the evidence holds, and one item of each supporting article
  in the evidence (up to four), each sentence the item's own text.

Phase 1 asks the held-apart questions (no learned recollections yet), phase 2 asks the learning
questions with learn=True, phase 3 asks the held-apart questions again. Reported: what phase 2 stored
(added / revised / nothing), the share of held-apart questions whose answer cites a learned
recollection resting on one of their supporting articles, and the research step's tokens (all
requests but the answer step; PydanticAI's count for a FunctionModel) before and after. The token
saving follows from the researcher's policy (it stops at a learned recollection), so it measures how
often retrieval puts one in front of it, not a real model's judgement. Prints a table and writes
benchmarks/results/learning.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))

from ingest_pages import RESULTS, fresh_database  # noqa: E402

NAMES_SEARCHED = 4
CITED = 4


def file_of(title: str) -> str:
    return title.replace(" ", "_") + ".md"


def pairs(questions: list[dict[str, Any]], n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` (learning, held-apart) question pairs that share two or more supporting articles; no
    question is in two pairs."""
    rng = random.Random(seed)
    pool = [q for q in questions if len(q["supporting_articles"]) >= 2]
    rng.shuffle(pool)
    used: set[str] = set()
    found = []
    for first in pool:
        if first["id"] in used:
            continue
        for second in pool:
            if second["id"] in used or second["id"] == first["id"]:
                continue
            if len(set(first["supporting_articles"]) & set(second["supporting_articles"])) >= 2:
                used.update((first["id"], second["id"]))
                found.append((first, second))
                break
        if len(found) == n:
            break
    return found


def scripted(gold: list[str], learned: dict[int, set[str]]) -> Any:
    """The gold-evidence model; ``learned``: learned recollection id → the files it rests on. It stops
    its research at a learned recollection only when that rests on a supporting article (as a model
    that reads it would see whether it answers)."""
    from ask_helpers import tool_returns
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    files = [file_of(t) for t in gold]
    useful = {i for i, rests in learned.items() if rests & set(files)}

    def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if "evidence" in [t.name for t in info.function_tools]:
            items = tool_returns(messages, "evidence")[-1].content["items"]
            said = [f"{i['text'].rstrip('. ')} {i['cite']}." for i in items if i["id"] in useful][:1]
            for name in files:
                item = next(
                    (i for i in items if i["cite"].startswith(f"[{name}") and i["level"] != "page"), None
                )
                if item is not None and len(said) < CITED + 1:
                    said.append(f"{' '.join(item['text'].split()).rstrip('. ')} {item['cite']}.")
            return ModelResponse(parts=[TextPart(" ".join(said) or "Nothing found.")])
        question = next(p.content for p in messages[0].parts if type(p).__name__ == "UserPromptPart")
        searches = tool_returns(messages, "search")
        if not searches:
            return ModelResponse(parts=[ToolCallPart("search", {"query": question, "k": 10})])
        if any(h["id"] in useful for h in searches[0].content):
            return ModelResponse(parts=[TextPart("A learned recollection answers it.")])
        if len(searches) <= min(NAMES_SEARCHED, len(gold)):
            return ModelResponse(parts=[ToolCallPart("search", {"query": gold[len(searches) - 1], "k": 5})])
        return ModelResponse(parts=[TextPart("Searched every supporting article.")])

    return FunctionModel(play, model_name="gold-evidence")


def research_tokens(answer: Any) -> int:
    return (
        answer.usage.input_tokens
        + answer.usage.output_tokens
        - answer.answer_usage.input_tokens
        - answer.answer_usage.output_tokens
    )


def held_apart(kp: Any, held: list[dict[str, Any]], learned: dict[int, set[str]]) -> list[dict[str, Any]]:
    rows = []
    for q in held:
        answer = kp.ask(q["question"], model=scripted(q["supporting_articles"], learned))
        gold = {file_of(t) for t in q["supporting_articles"]}
        from_learned = [
            c.item_id for c in answer.citations if c.item_id in learned and learned[c.item_id] & gold
        ]
        rows.append(
            {
                "question": q["question"],
                "research_tokens": research_tokens(answer),
                "requests": answer.usage.requests,
                "from_learned": bool(from_learned),
            }
        )
    return rows


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "phantomwiki-s1")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument(
        "--extra", type=int, default=200, help="other articles ingested besides the supporting ones"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="learning.json")
    args = parser.parse_args()

    from pyramid import Pyramid
    from pyramid.store.database import stop_embedded

    questions = [
        json.loads(line) for line in (args.eval / "questions.jsonl").read_text("utf-8").splitlines() if line
    ]
    chosen = pairs(questions, args.pairs, args.seed)
    needed = {file_of(t) for pair in chosen for q in pair for t in q["supporting_articles"]}
    others = sorted(p.name for p in (args.eval / "articles").glob("*.md") if p.name not in needed)
    random.Random(args.seed).shuffle(others)
    files = [args.eval / "articles" / name for name in sorted(needed) + others[: args.extra]]
    files = [f for f in files if f.exists()]

    with tempfile.TemporaryDirectory(prefix="kp-learning-") as work:
        dsn, data_dir = fresh_database(Path(work))
        try:
            with Pyramid.open(dsn=dsn) as kp:
                started = time.perf_counter()
                report = kp.ingest(files)
                ingest_s = time.perf_counter() - started
                held = [h for _, h in chosen]
                before = held_apart(kp, held, {})
                actions: dict[str, int] = {}
                learned: dict[int, set[str]] = {}
                for q, _ in chosen:
                    answer = kp.ask(
                        q["question"], model=scripted(q["supporting_articles"], learned), learn=True
                    )
                    result = answer.learned
                    actions[result.action] = actions.get(result.action, 0) + 1
                    if result.recollection is not None:
                        view = kp.recollection(result.recollection)
                        learned[result.recollection] = {Path(s.source).name for s in view.sources if s.source}
                after = held_apart(kp, held, learned)
        finally:
            stop_embedded(data_dir)

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.mean(r[key] for r in rows) if rows else 0.0

    result = {
        "pairs": len(chosen),
        "documents": len(files),
        "ingest_seconds": round(ingest_s, 1),
        "ingest_ok": report.ok,
        "learned": actions,
        "learned_recollections": len(learned),
        "held_apart_from_learned": sum(r["from_learned"] for r in after) / len(after) if after else 0.0,
        "research_tokens_before": round(mean(before, "research_tokens"), 1),
        "research_tokens_after": round(mean(after, "research_tokens"), 1),
        "requests_before": round(mean(before, "requests"), 2),
        "requests_after": round(mean(after, "requests"), 2),
        "per_question": [{"before": b, "after": a} for b, a in zip(before, after, strict=True)],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['documents']} articles ingested in {result['ingest_seconds']} s; {len(chosen)} question pairs"
    )
    print(
        "| phase | questions | learned (added / revised / none) | answered from a learned recollection | research tokens (mean) | requests (mean) |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| held-apart, before | {len(before)} | | 0 | {result['research_tokens_before']:,} | {result['requests_before']} |"
    )
    print(
        f"| learning (--learn) | {len(chosen)} | {actions.get('added', 0)} / {actions.get('revised', 0)} / "
        f"{actions.get('none', 0)} | | | |"
    )
    print(
        f"| held-apart, after | {len(after)} | | {result['held_apart_from_learned']:.0%} | "
        f"{result['research_tokens_after']:,} | {result['requests_after']} |"
    )


if __name__ == "__main__":
    main()
