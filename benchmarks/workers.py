"""Scale-out ingest: throughput of 1, 2, 4 `pyramid worker` processes over one queue, and the
cost of the queue itself.

Two cases on a generated corpus of tiny markdown documents (one page each):

* **llm**: a scripted PydanticAI FunctionModel (the test suite's) that sleeps L seconds per call,
  the latency-bound case of a hosted model: each worker distills ``--concurrency`` documents at once,
  so N workers should come close to N× the documents per second;
* **extractive**: the default distiller (no LLM), CPU-bound: on a 2-core machine shared with other
  work, more workers than cores buy nothing.

Each run: a fresh database, every file enqueued, N worker processes started with ``--drain``.
Documents/s is measured from the jobs' own timestamps (first claim to last job done), so process
start-up (imports, loading the encoder) is not counted; the wall time including start-up and the
corpus step is reported too. The claim rate is the queue alone: jobs claimed and marked done one at a
time on an empty pipeline (no conversion, no writes), by 1 and 4 claimers at once.

    python benchmarks/workers.py                          # 400 documents, L = 0.2 s, 1/2/4 workers
    python benchmarks/workers.py --files 800 --latency 0.5 --concurrency 4
    python benchmarks/workers.py --project                # the published run, from measured rates
    python benchmarks/workers.py --split                  # 1, 2 workers of all stages vs convert,distill + embed

``--project`` measures nothing: it projects the published run of this method (331 documents, 16,601
pages, 216,931 insights) onto N worker machines under a provider limit of R requests a minute, from
rates recorded by the other benchmarks (LLM calls per page from distill_pipeline.json; pages/s of
the page pipeline from ingest_pages.json; sentences/s of the encoder from encoder.json).

``--split`` compares one and two workers of every stage with a split fleet of two (one
``convert,distill``, one ``embed``); documents/s counts documents stored (jobs done), the wall time runs until the embed
worker has embedded everything and run the corpus step.

Prints a table and writes benchmarks/results/workers.json (the projection: workers_projection.json;
the split: workers_split.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from corpus import TextMaker  # noqa: E402
from ingest_pages import RESULTS, fresh_database  # noqa: E402

SETTINGS = {"page_chars": 2000, "convert_workers": 1}


def write_tiny_corpus(root: Path, files: int) -> None:
    maker = TextMaker(seed=5)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        words = maker.rng.sample(maker.words[:2000], 40)
        body = " ".join(
            f"The {a} {b} the {c}." for a, b, c in zip(words[0::3], words[1::3], words[2::3], strict=False)
        )
        (root / f"note{i:04d}.md").write_text(f"# Note {i}\n\n{body}\n")


def worker_main(dsn: str, latency: float, concurrency: int, stages: str | None = None) -> None:
    """One worker process (started by the benchmark itself)."""
    from pyramid import Pyramid
    from pyramid.worker import WorkerOptions, parse_stages

    model: Any = None
    if latency > 0:
        from scripted import Scripted

        model = Scripted(delay=latency).model("sleep")
    with Pyramid.open(dsn=dsn, **SETTINGS) as kp:
        options = WorkerOptions(drain=True, batch=8, poll=0.2, stages=parse_stages(stages))
        report = kp.work(options, model=model, concurrency=concurrency)
    print(json.dumps(report.summary()))


def run_workers(
    work: Path,
    corpus: Path,
    *,
    workers: int,
    latency: float,
    concurrency: int,
    stages: list[str | None] | None = None,
) -> dict[str, Any]:
    """``workers`` processes of every stage, or one process per entry of ``stages`` (a split
    fleet: ``["convert,distill", "embed"]``)."""
    import psycopg

    from pyramid import Pyramid

    dsn, _ = fresh_database(work)
    with Pyramid.open(dsn=dsn, **SETTINGS) as kp:
        queued = kp.enqueue([corpus])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--worker", dsn, "--latency", str(latency)]
    command += ["--concurrency", str(concurrency)]
    fleet = stages or [None] * workers
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            command + (["--stages", stage] if stage else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for stage in fleet
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed ({proc.returncode}): {err[-2000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        first, last, done = conn.execute(
            "SELECT extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)), count(*)"
            " FROM ingest_jobs WHERE status = 'done'"
        ).fetchone()
        (stored,) = conn.execute("SELECT count(*) FROM documents WHERE status = 'ready'").fetchone()
    span = float(last) - float(first)
    return {
        "case": "llm" if latency > 0 else "extractive",
        "workers": len(fleet),
        "stages": [stage or "all" for stage in fleet],
        "latency_s": latency,
        "concurrency_per_worker": concurrency if latency > 0 else None,
        "documents": queued.enqueued,
        "jobs_done": int(done),
        "documents_ready": int(stored),
        "work_s": round(span, 2),
        "documents_per_s": round(int(done) / span, 2),
        "wall_s_with_startup": round(wall, 2),
        "jobs_per_worker": [r["jobs_done"] for r in reports],
        "items_embedded_per_worker": [r["items_embedded"] for r in reports],
    }


async def _claims(dsn: str, jobs_n: int, claimers: int) -> float:
    import psycopg
    from psycopg.rows import dict_row

    from pyramid.store import jobs

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("TRUNCATE ingest_jobs")
        files = [(f"/bench/file{i}.md", f"{i:064x}", 1) for i in range(jobs_n)]
        async with conn.transaction():
            await jobs.enqueue(conn, files, max_attempts=3)

    async def claimer(name: str) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
            while claimed := await jobs.claim(conn, owner=name, lease=60, limit=1):
                await jobs.complete(conn, claimed[0].id, owner=name)

    started = time.perf_counter()
    await asyncio.gather(*(claimer(f"bench:{i}") for i in range(claimers)))
    return jobs_n / (time.perf_counter() - started)


def claim_rate(work: Path, jobs_n: int) -> list[dict[str, Any]]:
    from pyramid import Pyramid

    dsn, _ = fresh_database(work)
    with Pyramid.open(dsn=dsn, **SETTINGS):
        pass  # the schema
    return [
        {"claimers": n, "jobs": jobs_n, "claims_per_s": round(asyncio.run(_claims(dsn, jobs_n, n)), 1)}
        for n in (1, 4)
    ]


PUBLISHED = {"documents": 331, "pages": 16_601, "insights": 216_931}


def project(machines: list[int], limits: list[int]) -> dict[str, Any]:
    """Wall time of the published run on N worker machines (each like this 2-core one) under a limit
    of R model requests a minute: the longer of what the provider allows (calls / R) and what the
    machines' CPUs do (each page converted and embedded, its insights embedded)."""
    distill = json.loads((RESULTS / "distill_pipeline.json").read_text())["runs"][0]
    calls_per_page = distill["llm_calls"] / distill["pages"]
    pages = json.loads((RESULTS / "ingest_pages.json").read_text())["runs"]
    page_rate = next(r for r in pages if r["requested"] == "auto")["pipeline_pages_per_s"]
    encoder = json.loads((RESULTS / "encoder.json").read_text())
    runs = encoder["rows"]
    sentence_rate = next(r for r in runs if r["backend"] == "onnx" and r["precision"] == "int8")[
        "sentences_per_s"
    ]
    insights_per_page = PUBLISHED["insights"] / PUBLISHED["pages"]
    cpu_s_per_page = 1 / page_rate + insights_per_page / sentence_rate
    calls = PUBLISHED["pages"] * calls_per_page
    rows = []
    for limit in limits:
        for n in machines:
            provider_h = calls / limit / 60
            cpu_h = PUBLISHED["pages"] * cpu_s_per_page / n / 3600
            rows.append(
                {
                    "requests_per_minute": limit,
                    "machines": n,
                    "provider_hours": round(provider_h, 2),
                    "cpu_hours": round(cpu_h, 2),
                    "wall_hours": round(max(provider_h, cpu_h), 2),
                    "bound": "provider" if provider_h >= cpu_h else "cpu",
                }
            )
    return {
        "published": PUBLISHED,
        "calls_per_page": round(calls_per_page, 3),
        "llm_calls": round(calls),
        "page_pipeline_pages_per_s": page_rate,
        "encoder_sentences_per_s": sentence_rate,
        "insights_per_page": round(insights_per_page, 2),
        "cpu_seconds_per_page": round(cpu_s_per_page, 4),
        "rows": rows,
    }


def print_projection(projection: dict[str, Any]) -> None:
    print(
        f"published run: {projection['published']['pages']:,} pages, {projection['llm_calls']:,} model calls "
        f"({projection['calls_per_page']} per page), {projection['cpu_seconds_per_page']} CPU s per page "
        f"on one 2-core machine"
    )
    print("| requests/min | machines | provider h | CPU h | wall h | bound |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in projection["rows"]:
        print(
            f"| {r['requests_per_minute']:,} | {r['machines']} | {r['provider_hours']} | {r['cpu_hours']} "
            f"| **{r['wall_hours']}** | {r['bound']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="seconds the scripted model sleeps per call"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="documents each worker distills at once")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cases", nargs="+", default=["llm", "extractive"], choices=["llm", "extractive"])
    parser.add_argument("--claims", type=int, default=2000, help="jobs for the claim-rate measurement")
    parser.add_argument("--worker", metavar="DSN", help=argparse.SUPPRESS)
    parser.add_argument("--stages", help=argparse.SUPPRESS)
    parser.add_argument(
        "--split",
        action="store_true",
        help="compare 1 and 2 workers of every stage with a split fleet (convert,distill + embed)",
    )
    parser.add_argument("--project", action="store_true", help="project the published run; measure nothing")
    parser.add_argument("--machines", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--limits", type=int, nargs="+", default=[500, 5_000], help="requests per minute")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker, args.latency, args.concurrency, args.stages)
        return
    if args.project:
        projection = project(args.machines, args.limits)
        print_projection(projection)
        out = RESULTS / "workers_projection.json"
        out.write_text(json.dumps(projection, indent=2) + "\n")
        print(f"wrote {out}")
        return

    from pyramid.store.database import stop_embedded

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pyramid-bench-workers-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        write_tiny_corpus(corpus, args.files)
        try:
            for case in args.cases:
                latency = args.latency if case == "llm" else 0.0
                fleets: list[list[str | None]] = (
                    [[None], [None, None], ["convert,distill", "embed"]]
                    if args.split
                    else [[None] * n for n in args.workers]
                )
                for fleet in fleets:
                    row = run_workers(
                        work,
                        corpus,
                        workers=len(fleet),
                        latency=latency,
                        concurrency=args.concurrency,
                        stages=fleet,
                    )
                    base = next((r for r in rows if r["case"] == case), row)
                    row["speedup"] = round(row["documents_per_s"] / base["documents_per_s"], 2)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            claims = [] if args.split else claim_rate(work, args.claims)
        finally:
            stop_embedded(work / "kp")

    print()
    print(
        f"{'case':<11} {'stages':<22} {'docs':>5} {'work s':>7} {'docs/s':>7} {'speedup':>7} {'wall s':>7}"
        f" {'embedded':>9}"
    )
    for r in rows:
        print(
            f"{r['case']:<11} {' + '.join(r['stages']):<22} {r['jobs_done']:>5} {r['work_s']:>7}"
            f" {r['documents_per_s']:>7} {r['speedup']:>6}x {r['wall_s_with_startup']:>7}"
            f" {sum(r['items_embedded_per_worker']):>9}"
        )
    for c in claims:
        print(f"queue alone: {c['claimers']} claimer(s), {c['jobs']} jobs: {c['claims_per_s']} claims/s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("workers_split.json" if args.split else "workers.json")
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "settings": {"files": args.files, "latency_s": args.latency, "concurrency": args.concurrency},
                "runs": rows,
                "claims": claims,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
