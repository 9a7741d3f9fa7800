"""``pyramid worker``: take ingest jobs from the queue (``ingest_jobs``) and run them through the
ingest pipeline, on any number of processes and machines sharing one database.

A worker claims a few jobs under a lease, renews the lease by heartbeat while it works, and runs
the same pipeline as ``pyramid ingest`` (:class:`pyramid.ingest.Ingest`) over the claimed files.
Inside each document's write transaction it checks that it still holds the job (row-locked until the
commit) and, with the file's last document, marks the job done: a worker that lost its lease (it
stalled, the lease expired, another worker took the job) rolls its write back and so never stores a
second version. A worker killed anywhere loses only its lease. A job that fails is queued again after
a delay, and after ``max_attempts`` it is ``failed`` with its reason (the dead letter).

When the queue is empty, the worker that gets the corpus lock runs the corpus step (recollections,
BM25 compaction), which is driven by what the database says is pending.

A mixed fleet splits the stages (``stages``): workers of ``convert,distill`` store documents whose
pages and items have no vector yet, and ``embed`` workers (a GPU machine) fill the vectors in
(:func:`pyramid.reembed.embed_pending`) and run the corpus step, which needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, LeaseLostError
from .faults import checkpoint
from .ingest import Ingest
from .models import FileResult
from .runtime import Runtime
from .store import jobs, locks
from .store.schema import LOCK_CORPUS, LOCK_WRITER, for_collection

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .api import Pyramid
    from .distill.base import Distiller


STAGES = ("convert", "distill", "embed")
ALL_STAGES = frozenset(STAGES)
# A document is converted, distilled and written in one transaction, so convert and distill go
# together; embedding can be left to other workers.
STAGE_SETS = (ALL_STAGES, frozenset({"convert", "distill"}), frozenset({"embed"}))


def parse_stages(text: str | None) -> frozenset[str]:
    """``--stages``: a comma-separated set of convert, distill, embed (None or empty: all three)."""
    if not text or not text.strip():
        return ALL_STAGES
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ConfigError(f"--stages: no stage {unknown[0]!r} (the stages are {', '.join(STAGES)})")
    chosen = frozenset(names)
    if chosen not in STAGE_SETS:
        raise ConfigError(
            f"--stages {text}: convert and distill run together (a document is converted, distilled "
            "and written in one transaction); choose convert,distill, embed, or all three"
        )
    return chosen


def worker_name() -> str:
    """host:pid:random — unique even for two workers that reuse a pid on one host."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class WorkerOptions:
    """How a worker works. ``lease``: seconds a claim lasts without a heartbeat; ``heartbeat``:
    seconds between renewals (default a third of the lease); ``batch``: jobs claimed at once (run
    through one pipeline, so the encoder batches pages across them); ``poll``: seconds between
    looks at an empty queue; ``retry_delay``: seconds × attempts before a failed job is tried again;
    ``once``: exit when nothing is claimable; ``drain``: exit when no job is queued or running;
    ``max_jobs``: exit after this many jobs (None: no limit); ``stages``: what this worker does
    (:data:`STAGE_SETS`): without ``embed`` it stores pages and items without vectors and never
    runs the corpus step; with ``embed`` alone it only embeds those and runs the corpus step;
    ``embed_batch``: items embedded per transaction."""

    lease: float = 60.0
    heartbeat: float | None = None
    batch: int = 4
    poll: float = 1.0
    retry_delay: float = 5.0
    once: bool = False
    drain: bool = False
    max_jobs: int | None = None
    corpus: bool = True
    stages: frozenset[str] = ALL_STAGES
    embed_batch: int = 256


@dataclass
class WorkerReport:
    """What one worker did."""

    worker: str
    jobs_done: int = 0
    jobs_retried: int = 0  # failed attempts queued again
    jobs_failed: int = 0  # failed for good (max_attempts)
    leases_lost: int = 0
    items_embedded: int = 0  # items stored without a vector by others, embedded by this worker
    corpus_steps: int = 0
    elapsed: float = 0.0
    results: list[FileResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return {
            "worker": self.worker,
            "jobs_done": self.jobs_done,
            "jobs_retried": self.jobs_retried,
            "jobs_failed": self.jobs_failed,
            "leases_lost": self.leases_lost,
            "items_embedded": self.items_embedded,
            "corpus_steps": self.corpus_steps,
            "documents": counts,
            "elapsed": round(self.elapsed, 3),
            "jobs_per_s": round(self.jobs_done / self.elapsed, 3) if self.elapsed else None,
        }


def _belongs(result: FileResult, path: str) -> bool:
    return result.source == path or result.source.startswith(path + "#")


class Worker:
    """One worker process's loop over the queue."""

    def __init__(
        self,
        rt: Runtime,
        *,
        distiller: Distiller | None,
        options: WorkerOptions | None = None,
        concurrency: int | None = None,
        name: str | None = None,
    ) -> None:
        self.rt = rt
        self.distiller = distiller
        self.options = options or WorkerOptions()
        self.concurrency = concurrency
        self.name = name or worker_name()
        self.report = WorkerReport(worker=self.name)
        self._dirty = True  # run the corpus step at the first empty queue (a killed worker's leftovers)
        self.queue_empty = False  # no job of its collection queued or running, when it last looked

    @contextlib.asynccontextmanager
    async def _control(self) -> AsyncIterator[AsyncConnection]:
        """The worker's own connection for heartbeats and its locks: a session lock dies with it,
        so a killed worker never leaves the writer or the corpus lock held."""
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.rt.db.url, autocommit=True)
        try:
            yield conn
        finally:
            await conn.close()

    async def run(self) -> WorkerReport:
        started = time.perf_counter()
        opts = self.options
        ingests, embeds = "convert" in opts.stages, "embed" in opts.stages
        if embeds:
            # Load the encoder before claiming: loading it under a lease holds jobs others could run.
            await self.rt.embedder.aload()
        async with self._control() as control, self._llm_cap():
            while opts.max_jobs is None or self.report.jobs_done + self.report.jobs_failed < opts.max_jobs:
                if ingests:
                    claimed = await self._claim(control)
                    if claimed:
                        await self.process(claimed, control=control)
                        continue
                if embeds and await self._embed_some():
                    continue
                async with self.rt.db.connection() as conn:
                    waiting = await jobs.counts(conn)
                empty = waiting["queued"] == 0 and waiting["running"] == 0
                self.queue_empty = empty
                # The corpus step needs every vector (recollections join items by them): it is the
                # embedding workers' (and embeds whatever is left first).
                if empty and opts.corpus and embeds:
                    await self._corpus(control)
                if opts.once or (opts.drain and empty):
                    break
                await asyncio.sleep(opts.poll)
        self.report.elapsed = time.perf_counter() - started
        return self.report

    async def _embed_some(self) -> int:
        """One batch of the items others stored without a vector (0: none is waiting)."""
        from .reembed import embed_pending

        embedded = await embed_pending(self.rt, batch=self.options.embed_batch, once=True)
        if embedded:
            self.report.items_embedded += embedded
            self._dirty = True
        return embedded

    @contextlib.asynccontextmanager
    async def _llm_cap(self) -> AsyncIterator[None]:
        """``llm_concurrency``: the model's documents at once, counted across the cluster."""
        cap = self.rt.settings.llm_concurrency
        if cap is None or not hasattr(self.distiller, "cluster"):
            yield
            return
        from .slots import ClusterSlots

        slots = ClusterSlots(self.rt.db.url, cap)
        self.distiller.cluster = slots  # type: ignore[union-attr]
        try:
            yield
        finally:
            self.distiller.cluster = None  # type: ignore[union-attr]
            await slots.close()

    async def _claim(self, control: AsyncConnection) -> list[jobs.Claimed]:
        limit = self.options.batch
        if self.options.max_jobs is not None:
            limit = min(limit, self.options.max_jobs - self.report.jobs_done - self.report.jobs_failed)
        async with self.rt.db.connection() as conn:
            claimed = await jobs.claim(conn, owner=self.name, lease=self.options.lease, limit=limit)
        if claimed:
            checkpoint("job.claimed")
        return claimed

    async def process(
        self, claimed: Sequence[jobs.Claimed], *, control: AsyncConnection | None = None
    ) -> None:
        """Run claimed jobs through one ingest pipeline and settle each: done, queued again, failed."""
        by_path = {job.source: job for job in claimed}
        completed: set[int] = set()
        lost: set[int] = set()

        async def guard(conn: AsyncConnection, path: str, last: bool) -> None:
            job = by_path.get(path)
            if job is None:  # discovery named the file differently from its job: never write it
                raise LeaseLostError(f"{path}: not a file of this worker's jobs")
            if not await jobs.hold(conn, job.id, owner=self.name):
                lost.add(job.id)
                raise LeaseLostError(
                    f"{path}: this worker's lease of job {job.id} expired and the job is another's now"
                )
            if last:
                await jobs.complete(conn, job.id, owner=self.name)
                completed.add(job.id)

        run = Ingest(
            self.rt,
            distiller=self.distiller,
            concurrency=self.concurrency,
            write_guard=guard,
            corpus_step=False,
            embed="embed" in self.options.stages,
        )
        async with self._writing(control) as beat:
            beating = asyncio.create_task(self._heartbeat(beat, [job.id for job in claimed], lost))
            try:
                report = await run.run([job.source for job in claimed])
                error = None
            except Exception as exc:  # the pipeline itself failed (the encoder, the database): retry
                report, error = None, f"{type(exc).__name__}: {exc}"
            finally:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
        self._dirty = True
        async with self.rt.db.connection() as conn:
            for job in claimed:
                results = [r for r in report.results if _belongs(r, job.source)] if report else []
                self.report.results.extend(results)
                await self._settle(conn, job, results, error, done=job.id in completed, lost=job.id in lost)

    async def _settle(
        self,
        conn: AsyncConnection,
        job: jobs.Claimed,
        results: list[FileResult],
        error: str | None,
        *,
        done: bool,
        lost: bool,
    ) -> None:
        if lost:
            self.report.leases_lost += 1
            return
        as_json = [r.model_dump(mode="json") for r in results]
        failed = [r for r in results if r.outcome == "failed"]
        if done:  # its last document's transaction marked it done (whatever failed after that)
            await jobs.set_results(conn, job.id, as_json, owner=self.name)
            self.report.jobs_done += 1
            return
        if error is None and not failed:
            # Unchanged files, removals, a feed whose documents were written at once: no write
            # transaction of the job's own marked it done.
            if await jobs.complete(conn, job.id, owner=self.name):
                await jobs.set_results(conn, job.id, as_json, owner=self.name)
                self.report.jobs_done += 1
            else:
                self.report.leases_lost += 1
            return
        reason = error or "; ".join(f"{r.source}: {r.reason}" for r in failed)
        status = await jobs.fail(
            conn, job.id, owner=self.name, error=reason, delay=self.options.retry_delay, results=as_json
        )
        if status == "failed":
            self.report.jobs_failed += 1
        elif status == "queued":
            self.report.jobs_retried += 1
        else:
            self.report.leases_lost += 1

    @contextlib.asynccontextmanager
    async def _writing(self, control: AsyncConnection | None) -> AsyncIterator[AsyncConnection | None]:
        """Workers share the writer lock: a plain ``pyramid ingest`` (which holds it alone) and the
        workers never write at once, while any number of workers write side by side."""
        if control is None:
            yield None
            return
        key = for_collection(LOCK_WRITER, await self.rt.db.ensure_collection())
        # Shared, like every writer's hold on the database-wide key (reembed takes it exclusive).
        while not await locks.try_lock(control, LOCK_WRITER, shared=True):
            await asyncio.sleep(0.5)
        try:
            while not await locks.try_lock(control, key, shared=True):
                await asyncio.sleep(0.5)
            try:
                yield control
            finally:
                await locks.unlock(control, key, shared=True)
        finally:
            await locks.unlock(control, LOCK_WRITER, shared=True)

    async def _heartbeat(self, control: AsyncConnection | None, ids: list[int], lost: set[int]) -> None:
        every = self.options.heartbeat or self.options.lease / 3
        while True:
            await asyncio.sleep(every)
            if control is None:
                async with self.rt.db.connection() as conn:
                    held = await jobs.heartbeat(conn, ids, owner=self.name, lease=self.options.lease)
            else:
                held = await jobs.heartbeat(control, ids, owner=self.name, lease=self.options.lease)
            # A job this worker no longer holds is not renewed; its write will find out and roll back.
            ids = [i for i in ids if i in held]

    async def _corpus(self, control: AsyncConnection) -> None:
        """The corpus step, by the one worker that takes the corpus lock while the queue is empty,
        and only when something is pending (this worker wrote, or the database says so)."""
        from . import store

        if not self._dirty:
            async with self.rt.db.connection() as conn:
                pending, changed = await store.corpus_pending(conn)
            if not pending and not changed:
                return
        corpus_lock = for_collection(LOCK_CORPUS, self.rt.db.collection_id)
        if not await locks.try_lock(control, corpus_lock):
            return  # another worker is running it
        try:
            async with self.rt.db.connection() as conn:
                waiting = await jobs.counts(conn)
            if waiting["queued"] or waiting["running"]:
                return  # work arrived meanwhile: whoever drains it runs the step
            await Ingest(self.rt, distiller=self.distiller).finish_corpus()
            self.report.corpus_steps += 1
            self._dirty = False
        finally:
            await locks.unlock(control, corpus_lock)


async def run_corpus_step(rt: Runtime, distiller: Distiller | None) -> None:
    """``pyramid corpus``: the corpus step now, under the corpus lock (waiting for it)."""
    async with rt.db.connection() as conn, locks.held(conn, for_collection(LOCK_CORPUS, rt.db.collection_id)):
        await Ingest(rt, distiller=distiller).finish_corpus()


_COUNTED = ("jobs_done", "jobs_retried", "jobs_failed", "leases_lost", "items_embedded", "corpus_steps")


def _merged(name: str, reports: Sequence[WorkerReport]) -> WorkerReport:
    """One report of the per-collection workers of ``work_all``: their counts summed, results joined."""
    total = WorkerReport(worker=name)
    for report in reports:
        for key in _COUNTED:
            setattr(total, key, getattr(total, key) + getattr(report, key))
        total.results.extend(report.results)
    return total


def _work_done(report: WorkerReport) -> int:
    """Jobs settled and items embedded: what a round of ``work_all`` counts as progress."""
    return sum(getattr(report, key) for key in _COUNTED if key != "corpus_steps")


async def work_all(
    root: Pyramid,
    *,
    distiller: Distiller | None,
    options: WorkerOptions | None = None,
    concurrency: int | None = None,
) -> WorkerReport:
    """``pyramid worker --all-collections``: one worker for every collection the connection can see.

    In rounds: each collection in turn, on a pyramid scoped to it (its writer, corpus and job rows
    are that collection's), works until nothing of it is claimable (and runs its corpus step when
    its queue is empty); collections made meanwhile join at the next round. ``once``: stop after a
    round in which nothing was done; ``drain``: stop when no collection has a job queued or running.
    One name for the whole worker, so `pyramid jobs` shows one owner."""
    from dataclasses import replace

    opts = options or WorkerOptions()
    name = worker_name()
    started = time.perf_counter()
    workers: dict[str, tuple[Pyramid, Worker]] = {}

    def total() -> WorkerReport:
        return _merged(name, [worker.report for _, worker in workers.values()])

    try:
        while True:
            before = _work_done(total())
            waiting = False
            for info in await root.alist_collections():
                if info.name not in workers:
                    # The pipeline's writers, its claims and the corpus step each take a connection.
                    scoped = await root.ascoped(collections=[info.name], role=root._rt.db.role, pool_size=8)
                    workers[info.name] = (
                        scoped,
                        Worker(scoped._rt, distiller=distiller, concurrency=concurrency, name=name),
                    )
                worker = workers[info.name][1]
                so_far = total()
                left = (
                    None if opts.max_jobs is None else opts.max_jobs - so_far.jobs_done - so_far.jobs_failed
                )
                if left is not None and left <= 0:
                    break
                worker.options = replace(opts, once=True, drain=False, max_jobs=left)
                await worker.run()
                waiting = waiting or not worker.queue_empty
            so_far = total()
            if opts.max_jobs is not None and so_far.jobs_done + so_far.jobs_failed >= opts.max_jobs:
                break
            progressed = _work_done(so_far) > before
            if (opts.once and not progressed) or (opts.drain and not waiting):
                break
            if not progressed:
                await asyncio.sleep(opts.poll)
    finally:
        for scoped, _ in workers.values():
            await scoped.aclose()
    report = total()
    report.elapsed = time.perf_counter() - started
    return report
