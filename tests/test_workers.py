"""The ingest queue and its workers on the real embedded PostgreSQL with the extractive distiller:
one job per file content however often it is enqueued, workers that drain a queue store what a
plain ingest stores, an expired lease is taken over, a stale worker's late write is rolled back,
and a job that keeps failing becomes a dead letter that `pyramid jobs` lists and retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import run_cli
from test_crash import per_document, snapshot

from pyramid import Pyramid
from pyramid.distill.extractive import ExtractiveDistiller
from pyramid.errors import BusyError, DistillationError
from pyramid.store import jobs
from pyramid.worker import Worker, WorkerOptions

# The default encoder: a text's vector does not depend on how the workers batch it.
SETTINGS = {"page_chars": 300, "convert_workers": 1, "concurrency": 1}
TOPIC = "The harbor crane lifts containers from the ferry. The crane operator checks the steel cable daily."


def _corpus(root: Path, n: int = 5) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"doc{i}.md").write_text(
            f"# Note {i}\n\nThe ferry {i} leaves at {i + 6} o'clock. {TOPIC}\n\n"
            f"## Cargo\n\nCrane {i} lifts {i * 7 + 3} tons of grain. The dock {i} closes at night."
        )
    return root


# The settings as a worker process started by hand reads them.
ENV = {f"PYRAMID_{key.upper()}": str(value) for key, value in SETTINGS.items()}


@contextlib.contextmanager
def _beside_a_plain_ingest(server_url: str, root: Path, names: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """Two new databases: the first holds a plain ingest of ``root`` (what the queue must equal),
    the second is empty; both are dropped afterwards."""
    from conftest import _create_database, _drop_database

    plain, queue = (_create_database(server_url, name) for name in names)
    try:
        with Pyramid.open(dsn=plain, **SETTINGS) as kp:
            assert kp.ingest([root]).ok
        yield plain, queue
    finally:
        for name in names:
            _drop_database(server_url, name)


def _jobs(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT source, status, attempts, lease_owner, last_error FROM ingest_jobs ORDER BY id"
        ).fetchall()


def _levels(rows: list[tuple[tuple[Any, ...], int]]) -> dict[str, int]:
    """Rows (of items or provenance links) counted per level."""
    counts: dict[str, int] = {}
    for (_, level, *_rest), count in rows:
        counts[level] = counts.get(level, 0) + count
    return counts


def _versions(dsn: str) -> list[tuple[Any, ...]]:
    """Each document with the ids of its items: a second version would change them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT d.source, d.updated_at, array_agg(i.id ORDER BY i.id)"
            " FROM documents d JOIN items i ON i.document_id = d.id GROUP BY d.id ORDER BY d.source"
        ).fetchall()


def test_enqueue_twice_and_two_scans_at_once_leave_one_job_per_file(fresh_dsn: str, tmp_path: Path) -> None:
    root = _corpus(tmp_path / "docs", 4)
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        first = kp.enqueue([root])
        again = kp.enqueue([root])

        async def two_scans() -> list[Any]:
            return list(await asyncio.gather(kp.aenqueue([root]), kp.aenqueue([root])))

        both = kp.run(two_scans())
    assert (first.enqueued, first.already) == (4, 0)
    assert (again.enqueued, again.already) == (0, 4)
    assert [r.enqueued for r in both] == [0, 0]
    rows = _jobs(fresh_dsn)
    assert len(rows) == 4 and {r[1] for r in rows} == {"queued"}
    assert sorted(first.job_ids) == sorted(again.job_ids)

    # A file that changed before anyone took its job: one job, of the new content.
    (root / "doc0.md").write_text("# Note 0\n\nThe ferry was cancelled today.")
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        changed = kp.enqueue([root])
    assert (changed.enqueued, changed.already) == (1, 3)
    assert len(_jobs(fresh_dsn)) == 4


def test_two_workers_store_what_a_plain_ingest_stores(pg_server_url: str, tmp_path: Path) -> None:
    root = _corpus(tmp_path / "docs", 6)
    with _beside_a_plain_ingest(pg_server_url, root, ("t_workers_plain", "t_workers_queue")) as (
        plain,
        queue,
    ):
        done = run_cli("ingest", str(root), "--workers", "2", "--json", dsn=queue, env=ENV)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["counts"]["added"] == 6, summary
        assert len(summary["workers"]) == 2 and sum(w["jobs"] for w in summary["workers"].values()) == 6
        expected, got = snapshot(plain), snapshot(queue)
        assert got["documents"] == expected["documents"]
        # Every document's own items are identical; the corpus's recollections are as many, from
        # the same documents (their text names the documents in the order they were stored).
        assert per_document(got) == per_document(expected)
        assert _levels(got["items"]) == _levels(expected["items"])
        assert _levels(got["links"]) == _levels(expected["links"])
        assert got["duplicates"] == [] and got["pending"] == (0,)
        rows = _jobs(queue)
        assert len(rows) == 6 and {r[1] for r in rows} == {"done"}
        assert len({r[3] for r in rows}) == 2, "both workers took jobs"
        # Nothing changed: a second run queues nothing and writes nothing.
        again = run_cli("ingest", str(root), "--workers", "2", "--json", dsn=queue, env=ENV)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["counts"]["unchanged"] == 6
        assert snapshot(queue) == got
        # sync --workers: the workers ingest, then the documents of deleted files are removed.
        (root / "doc5.md").unlink()
        (root / "doc0.md").write_text("# Note 0\n\nThe ferry was cancelled today.")
        synced = run_cli("sync", str(root), "--workers", "2", "--json", dsn=queue, env=ENV)
        assert synced.returncode == 0, synced.stderr
        counts = json.loads(synced.stdout)["counts"]
        assert (counts["updated"], counts["removed"], counts["unchanged"]) == (1, 1, 4), counts
        after = snapshot(queue)
        assert [d[0].rsplit("/", 1)[1] for d in after["documents"]] == [f"doc{i}.md" for i in range(5)]
        assert after["pending"] == (0,) and {d[3] for d in after["documents"]} == {"ready"}


def _vectors(dsn: str) -> dict[tuple[Any, ...], list[float]]:
    """Every document's item vectors, by (source, level, ordinal)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.source, i.level, i.ordinal, i.embedding::text FROM items i"
            " JOIN documents d ON d.id = i.document_id WHERE i.embedding IS NOT NULL"
        ).fetchall()
    return {tuple(row[:3]): json.loads(row[3]) for row in rows}


def test_a_split_fleet_stores_what_a_plain_ingest_stores(pg_server_url: str, tmp_path: Path) -> None:
    """`--stages convert,distill` stores documents without their vectors (found by BM25 only, no
    corpus step); a `--stages embed` worker fills them in and runs the corpus step; the database
    then equals a plain ingest's, vectors included."""
    import numpy as np

    from pyramid.worker import parse_stages

    root = _corpus(tmp_path / "docs", 4)
    with _beside_a_plain_ingest(pg_server_url, root, ("t_split_plain", "t_split_queue")) as (plain, queue):
        with Pyramid.open(dsn=queue, **SETTINGS) as kp:
            assert kp.enqueue([root]).enqueued == 4
            cpu = kp.work(WorkerOptions(drain=True, poll=0.1, stages=parse_stages("convert,distill")))
            assert (cpu.jobs_done, cpu.items_embedded, cpu.corpus_steps) == (4, 0, 0)
            waiting = kp.unembedded()
            assert waiting > 0
            # Stored and found by words at once; not by vector until embedded.
            assert kp.search("grain", mode="bm25", levels=["page"])
            assert kp.search("grain", mode="vector", levels=["page"]) == []
        with psycopg.connect(queue, autocommit=True) as conn:
            pages = conn.execute(
                "SELECT count(*) FILTER (WHERE embedding IS NULL), count(*) FROM items WHERE level = 'page'"
            ).fetchone()
            statuses = {row[0] for row in conn.execute("SELECT status FROM documents")}
        assert pages is not None and pages[0] == pages[1] > 0 and statuses == {"distilled"}
        listed = run_cli("jobs", dsn=queue, env=ENV)
        assert listed.returncode == 0 and f"{waiting} item(s) stored without a vector" in listed.stderr

        gpu = run_cli("worker", "--stages", "embed", "--drain", "--json", dsn=queue, env=ENV)
        assert gpu.returncode == 0, gpu.stderr
        report = json.loads(gpu.stdout)
        assert (report["jobs_done"], report["items_embedded"], report["corpus_steps"]) == (0, waiting, 1)
        expected, got = snapshot(plain), snapshot(queue)
        assert got["documents"] == expected["documents"]
        assert per_document(got) == per_document(expected)  # embedding IS NOT NULL included
        assert _levels(got["items"]) == _levels(expected["items"])
        assert got["pending"] == (0,)
        mine, theirs = _vectors(queue), _vectors(plain)
        assert mine.keys() == theirs.keys()
        for key, vector in theirs.items():
            assert np.allclose(mine[key], vector, atol=1e-4), key
        with Pyramid.open(dsn=queue, **SETTINGS) as kp:
            assert kp.unembedded() == 0
            assert kp.search("grain", mode="vector", levels=["page"])


def test_one_worker_works_for_every_collection(fresh_dsn: str, tmp_path: Path) -> None:
    """`--all-collections`: the queues of two collections drained by one worker, each collection's
    documents written into it and its corpus step run."""
    hr, eng = _corpus(tmp_path / "hr", 2), _corpus(tmp_path / "eng", 3)
    for name, root, n in (("hr", hr, 2), ("eng", eng, 3)):
        with Pyramid.open(dsn=fresh_dsn, collection=name, **SETTINGS) as kp:
            assert kp.enqueue([root]).enqueued == n
    done = run_cli("worker", "--all-collections", "--drain", "--json", dsn=fresh_dsn, env=ENV)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["jobs_done"] == 5 and report["corpus_steps"] >= 2, report
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT c.name, d.path, d.status FROM documents d JOIN collections c ON c.id = d.collection_id"
        ).fetchall()
        owners = {row[0] for row in conn.execute("SELECT lease_owner FROM ingest_jobs")}
    assert sorted((c, Path(p).parent.name) for c, p, _ in stored) == [("eng", "eng")] * 3 + [("hr", "hr")] * 2
    assert {status for *_, status in stored} == {"ready"}
    assert owners == {report["worker"]}


@pytest.mark.parametrize("stages", ["convert", "embed,distill", "convert,embed", "ocr"])
def test_stage_sets_a_document_cannot_be_split_by_are_refused(dsn: str, stages: str) -> None:
    done = run_cli("worker", "--stages", stages, "--once", dsn=dsn)
    assert done.returncode == 2 and "--stages" in done.stderr, done.stderr


def test_an_expired_lease_is_taken_over(fresh_dsn: str, tmp_path: Path) -> None:
    root = _corpus(tmp_path / "docs", 2)
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        kp.enqueue([root])

        async def lost_worker() -> list[jobs.Claimed]:
            async with kp.runtime.db.connection() as conn:
                return await jobs.claim(conn, owner="gone:1:x", lease=0.5, limit=1)

        (claimed,) = kp.run(lost_worker())
        kp.run(asyncio.sleep(1.0))
        report = kp.work(WorkerOptions(drain=True, poll=0.2))
    assert report.jobs_done == 2 and report.leases_lost == 0
    rows = {r[0]: r for r in _jobs(fresh_dsn)}
    taken = rows[claimed.source]
    assert taken[1] == "done" and taken[2] == 2 and taken[3] == report.worker
    assert len(_versions(fresh_dsn)) == 2


class GatedDistiller(ExtractiveDistiller):
    """The extractive distiller that waits for a gate: a worker stalled mid-document."""

    def __init__(self, settings: Any, gate: asyncio.Event, *, fail: bool = False) -> None:
        super().__init__(settings)
        self.gate = gate
        self.fail = fail
        self.reached = asyncio.Event()

    async def distill(self, rt: Any, doc: Any) -> Any:
        self.reached.set()
        await self.gate.wait()
        if self.fail:  # a stale worker whose document fails must not mark the stored one failed
            raise DistillationError("the model gave up")
        return await super().distill(rt, doc)


@pytest.mark.parametrize("fail", [False, True], ids=["stores", "fails"])
def test_a_stale_worker_that_finishes_late_writes_nothing(fresh_dsn: str, tmp_path: Path, fail: bool) -> None:
    root = _corpus(tmp_path / "docs", 1)
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        kp.enqueue([root])
        rt = kp.runtime

        async def scenario() -> tuple[Worker, Worker, list[Any]]:
            gate = asyncio.Event()
            stalled = GatedDistiller(rt.settings, gate, fail=fail)
            # No heartbeat: the whole worker is stalled (a GC pause, a suspended VM).
            stale = Worker(
                rt,
                distiller=stalled,
                options=WorkerOptions(lease=0.5, heartbeat=3600, corpus=False),
                name="stale",
            )
            async with rt.db.connection() as conn:
                claimed = await jobs.claim(conn, owner="stale", lease=0.5, limit=1)
            late = asyncio.create_task(stale.process(claimed))
            await stalled.reached.wait()
            await asyncio.sleep(1.0)
            fresh = Worker(rt, distiller=ExtractiveDistiller(rt.settings), options=WorkerOptions(once=True))
            await fresh.run()
            written = await asyncio.to_thread(_versions, fresh_dsn)
            gate.set()
            await late
            return stale, fresh, written

        stale, fresh, written = kp.run(scenario())
    assert fresh.report.jobs_done == 1
    assert stale.report.leases_lost == 1 and stale.report.jobs_done == 0
    assert [r.outcome for r in stale.report.results] == ["failed"]
    assert "lease" in (stale.report.results[0].reason or "")
    assert _versions(fresh_dsn) == written and len(written) == 1
    ((_, status, attempts, owner, _),) = _jobs(fresh_dsn)
    assert (status, attempts, owner) == ("done", 2, fresh.name)


def test_a_job_that_keeps_failing_is_a_dead_letter_until_retried(fresh_dsn: str, tmp_path: Path) -> None:
    root = _corpus(tmp_path / "docs", 1)
    (root / "broken.pdf").write_bytes(b"\x00\x13 not a pdf at all \xff" * 40)
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        kp.enqueue([root], max_attempts=2)
        report = kp.work(WorkerOptions(drain=True, retry_delay=0, poll=0.1))
    assert (report.jobs_done, report.jobs_retried, report.jobs_failed) == (1, 1, 1)
    failed = [r for r in _jobs(fresh_dsn) if r[1] == "failed"]
    assert len(failed) == 1 and failed[0][0].endswith("broken.pdf") and failed[0][2] == 2
    assert "broken.pdf" in failed[0][4]

    listed = run_cli("jobs", "--failed", "--json", dsn=fresh_dsn)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["source"].endswith("broken.pdf") and row["status"] == "failed" and row["last_error"]
    table = run_cli("jobs", dsn=fresh_dsn)
    assert "broken.pdf" in table.stdout and "done" in table.stdout

    retried = run_cli("jobs", "retry", dsn=fresh_dsn)
    assert retried.returncode == 0, retried.stderr
    assert "1 failed job" in retried.stderr
    statuses = {r[0].rsplit("/", 1)[1]: (r[1], r[2]) for r in _jobs(fresh_dsn)}
    assert statuses["broken.pdf"] == ("queued", 0)
    worker = run_cli("worker", "--once", "--retry-delay", "0", "--json", dsn=fresh_dsn)
    assert worker.returncode == 1, worker.stderr  # it failed again: exit 1
    assert json.loads(worker.stdout)["jobs_retried"] == 1


@pytest.mark.parametrize("option", [["--dry-run"], ["--force"]])
def test_workers_refuse_options_they_do_not_offer(dsn: str, tmp_path: Path, option: list[str]) -> None:
    done = run_cli("ingest", str(tmp_path), "--workers", "2", *option, dsn=dsn)
    assert done.returncode == 2 and "--workers" in done.stderr


def test_a_plain_ingest_waits_while_workers_write(fresh_dsn: str, tmp_path: Path) -> None:
    """Workers share the collection's writer lock; a plain ingest holds it alone, so it cannot start
    meanwhile (the lock of collection 1, 'default')."""
    from pyramid.store.schema import LOCK_WRITER, for_collection

    key = for_collection(LOCK_WRITER, 1)

    root = _corpus(tmp_path / "docs", 1)
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp, psycopg.connect(fresh_dsn, autocommit=True) as worker:
        worker.execute("SELECT pg_advisory_lock_shared(%s, %s)", key)
        with pytest.raises(BusyError):
            kp.ingest([root], wait=0.5)
        worker.execute("SELECT pg_advisory_unlock_shared(%s, %s)", key)
        assert kp.ingest([root], wait=5).ok


def test_llm_concurrency_caps_the_model_calls_of_all_workers_together(fresh_dsn: str, tmp_path: Path) -> None:
    """Two workers, each allowed 4 documents with the model at once, under a cluster cap of 2: never
    more than 2 model calls in flight across both (the slots are counted in the database)."""
    from scripted import Scripted

    from pyramid.distill.llm import LLMDistiller

    root = _corpus(tmp_path / "docs", 6)
    brains = [Scripted(delay=0.3), Scripted(delay=0.3)]
    with Pyramid.open(dsn=fresh_dsn, llm_concurrency=2, **SETTINGS) as kp:
        kp.enqueue([root])
        rt = kp.runtime

        async def two_workers() -> list[Any]:
            workers = [
                Worker(
                    rt,
                    distiller=LLMDistiller(rt.settings, brain.model(f"slow-{i}"), concurrency=4),
                    options=WorkerOptions(drain=True, batch=3, poll=0.1),
                )
                for i, brain in enumerate(brains)
            ]
            return list(await asyncio.gather(*(w.run() for w in workers)))

        reports = kp.run(two_workers())
    assert sum(r.jobs_done for r in reports) == 6 and all(r.jobs_done for r in reports)
    spans = sorted(
        (c.started, c.ended) for brain in brains for c in brain.calls if c.agent != "recollections"
    )
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak == 2, peak


def test_jobs_add_queues_without_ingesting_and_a_worker_drains_it(fresh_dsn: str, tmp_path: Path) -> None:
    """The cluster's enqueuer: `pyramid jobs add` queues the files and stores nothing itself."""
    root = _corpus(tmp_path / "docs", 3)
    added = run_cli("jobs", "add", str(root), "--json", dsn=fresh_dsn)
    assert added.returncode == 0, added.stderr
    summary = json.loads(added.stdout)
    assert (summary["files"], summary["enqueued"], len(summary["jobs"])) == (3, 3, 3)
    assert [r[1] for r in _jobs(fresh_dsn)] == ["queued"] * 3 and _versions(fresh_dsn) == []
    again = run_cli("jobs", "add", str(root), dsn=fresh_dsn)
    assert again.returncode == 0 and "3 already queued" in again.stderr, again.stderr
    missing = run_cli("jobs", "add", str(tmp_path / "nowhere"), dsn=fresh_dsn)
    assert missing.returncode == 1 and "nowhere" in missing.stderr
    worker = run_cli("worker", "--drain", "--json", dsn=fresh_dsn, env={"PYRAMID_PAGE_CHARS": "300"})
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout)["jobs_done"] == 3 and len(_versions(fresh_dsn)) == 3
