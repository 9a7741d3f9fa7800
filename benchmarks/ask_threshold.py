"""Calibrate the "nothing relevant" note of no-model ``ask``: how similar is the best evidence to a
question the pyramid can answer, and to one it cannot?

    nice -n 10 python benchmarks/ask_threshold.py [--eval ../shared/eval/phantomwiki-s1] [--questions 30]

The articles that support the first ``--questions`` PhantomWiki questions are ingested (the
extractive distiller, as ``pyramid ingest`` does with no model); then ``ask`` without a model is run
for three groups of questions, and the best evidence's cosine similarity to the question (the score
the note is decided on) is collected:

- relevant: those questions, answerable from what was ingested;
- unknown people: other PhantomWiki questions about people none of whose articles were ingested
  (the same wording, so the hardest case: only the names differ);
- off-topic: general-knowledge questions that no biography answers.

Prints each group's distribution and, for candidate thresholds, how many questions of each group
would get the note; the chosen threshold is the highest one that notes none of the relevant
questions. Writes benchmarks/results/ask-threshold-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_pages import fresh_database  # noqa: E402
from quality import load  # noqa: E402

OFF_TOPIC = [
    "What is the capital of Australia?",
    "How many moons does Jupiter have?",
    "Who wrote the novel War and Peace?",
    "What is the boiling point of water at sea level?",
    "How do I reset a Wi-Fi router?",
    "What is the speed of light in a vacuum?",
    "Which team won the 2018 football World Cup?",
    "What is the chemical formula of table salt?",
    "How tall is Mount Everest?",
    "When did the Berlin Wall fall?",
    "What does a mitochondrion do in a cell?",
    "How much does a litre of milk cost in Norway?",
    "What programming language is the Linux kernel written in?",
    "Which planet is closest to the Sun?",
    "What is the exchange rate between the euro and the dollar?",
    "How do you bake sourdough bread?",
    "What is the population of Tokyo?",
    "Who painted the Mona Lisa?",
    "What causes the northern lights?",
    "How long does it take to fly from London to New York?",
]
# No answerable question may get the note: a wrong "nothing relevant" misleads, a missing one only
# leaves the reader to judge the listed items, as before.
TARGET_MISSED = 0.0


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "phantomwiki-s1")
    parser.add_argument(
        "--questions", type=int, default=30, help="answerable questions (their articles are ingested)"
    )
    args = parser.parse_args()

    from pyramid import Pyramid
    from pyramid.store.database import stop_embedded

    _, questions = load(args.eval)
    questions = [q for q in questions if q["supporting_articles"]]
    path_of = {}
    for path in sorted((args.eval / "articles").glob("*.md")):
        path_of[path.read_text("utf-8").splitlines()[0].lstrip("# ").strip()] = path
    relevant = questions[: args.questions]
    ingested = {title for q in relevant for title in q["supporting_articles"]}
    unknown = [q for q in questions[args.questions :] if not set(q["supporting_articles"]) & ingested]
    unknown = unknown[: max(len(OFF_TOPIC), args.questions)]
    print(
        f"{len(ingested)} articles ingested; {len(relevant)} answerable, {len(unknown)} about unknown people, "
        f"{len(OFF_TOPIC)} off-topic questions",
        flush=True,
    )

    groups: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kp-ask-threshold-") as tmp:
        corpus = Path(tmp) / "articles"
        corpus.mkdir()
        for title in sorted(ingested):
            shutil.copy(path_of[title], corpus / path_of[title].name)
        dsn, data_dir = fresh_database(Path(tmp))
        try:
            with Pyramid.open(dsn=dsn) as kp:
                report = kp.ingest([corpus])
                assert report.ok, report.failed

                def best(question: str) -> float:
                    answer = kp.ask(question)
                    return answer.relevance if answer.relevance is not None else 0.0

                groups["relevant"] = [best(q["question"]) for q in relevant]
                groups["unknown people"] = [best(q["question"]) for q in unknown]
                groups["off-topic"] = [best(q) for q in OFF_TOPIC]
                configured = kp.settings.ask_min_score
        finally:
            stop_embedded(data_dir)

    print("\n| group | n | min | p10 | median | p90 | max |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, values in groups.items():
        deciles = statistics.quantiles(values, n=10)
        print(
            f"| {name} | {len(values)} | {min(values):.3f} | {deciles[0]:.3f} | {statistics.median(values):.3f} "
            f"| {deciles[-1]:.3f} | {max(values):.3f} |"
        )
    candidates = [round(0.05 * n, 2) for n in range(2, 14)]
    print("\n| threshold | relevant noted | unknown people noted | off-topic noted |\n|---:|---:|---:|---:|")
    table = {}
    for threshold in candidates:
        row = {name: sum(v < threshold for v in values) / len(values) for name, values in groups.items()}
        table[threshold] = row
        print(
            f"| {threshold:.2f} | {row['relevant']:.0%} | {row['unknown people']:.0%} | {row['off-topic']:.0%} |"
        )
    chosen = max((t for t, row in table.items() if row["relevant"] <= TARGET_MISSED), default=candidates[0])
    print(
        f"\nchosen threshold: {chosen:.2f} (the highest that notes at most {TARGET_MISSED:.0%} of answerable questions)"
    )
    print(f"configured ask_min_score: {configured}")

    out = ROOT / "benchmarks" / "results" / f"ask-threshold-{args.eval.name}.json"
    out.write_text(
        json.dumps(
            {
                "eval": args.eval.name,
                "articles": len(ingested),
                "scores": groups,
                "noted_share": {str(t): row for t, row in table.items()},
                "chosen": chosen,
                "configured": configured,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
