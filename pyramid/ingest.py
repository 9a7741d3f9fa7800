"""The ingest pipeline: discover → hash → convert → embed pages → distill → store.

Stages overlap: files are converted on worker threads while the embedder (its own thread) encodes the
pages of earlier files and the writer stores finished documents, so the pipeline runs at close to
the speed of its slowest stage, the encoder. Each document version is written in one transaction.
An unchanged file (same sha256) costs one read and no write. One bad file is reported and the rest
go on.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .discover import discover
from .distill.base import Distilled, Distiller, PreparedDocument, embed_new
from .distill.incremental import align_pages
from .errors import ConversionError, DistillationError, LeaseLostError, PyramidError
from .faults import checkpoint
from .models import FileResult, IngestReport, Outcome, Usage
from .runtime import ProgressEvent, Runtime
from .store import DocumentRecord, NewItem, StoredFileState, stored_pages, text_hash

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .convert import ConvertedDocument

T = TypeVar("T")
_DONE = object()
# A stored version in these states needs no conversion or distillation again ("distilled" is waiting
# only for the corpus step, which every run finishes first).
READY_STATES = ("ready", "distilled")
PAGES_ONLY_STATES = (*READY_STATES, "converted")  # enough when this run does not distill
WRITERS = 2  # document transactions at once (the pool has a few connections; writes are short)

__all__ = ["Distilled", "Distiller", "Ingest", "PreparedDocument", "WriteGuard", "is_unchanged"]

# Called inside a document's write transaction with (connection, file path, whether this is the
# file's last document to write); raises LeaseLostError to roll the write back. The queue's workers
# use it to check their lease and mark the job done in the document's own transaction.
WriteGuard = Callable[["AsyncConnection", str, bool], Awaitable[None]]


def is_unchanged(stored: Sequence[StoredFileState], file_sha256: str, done_states: Sequence[str]) -> bool:
    """Whether a file needs no work: every document stored from it has this file hash and is done."""
    return bool(stored) and all(s.file_sha256 == file_sha256 and s.status in done_states for s in stored)


def _raise_unexpected() -> bool:
    return bool(os.environ.get("PYRAMID_RAISE_ERRORS"))


@dataclass
class _FileJob:
    path: Path
    stored: list[StoredFileState]
    sha256: str = ""
    size: int = 0
    mtime: float = 0.0
    pending_docs: int = 0
    results: list[FileResult] = field(default_factory=list)


class Ingest:
    """One run of the pipeline over a set of paths."""

    def __init__(
        self,
        rt: Runtime,
        *,
        distiller: Distiller | None = None,
        dry_run: bool = False,
        force: bool = False,
        concurrency: int | None = None,
        prune: bool = False,
        write_guard: WriteGuard | None = None,
        corpus_step: bool = True,
        embed: bool = True,
    ) -> None:
        self.rt = rt
        # False: pages and items are stored without vectors, for embedding workers to fill in
        # (`pyramid worker --stages convert,distill`); a distiller that needs vectors to distill
        # (the extractive one encodes sentences) still computes those, and they are kept.
        self.embed = embed
        self.prune = prune
        self.write_guard = write_guard
        self.corpus_step = corpus_step  # False: a queue worker leaves it to whoever drains the queue
        self._done_states = READY_STATES if distiller is not None else PAGES_ONLY_STATES
        self.settings = rt.settings
        self.distiller = distiller
        self.concurrency = concurrency or self.settings.concurrency
        self.dry_run = dry_run
        self.force = force
        self.report = IngestReport(dry_run=dry_run)
        self.files_done = 0
        self._timings_lock = threading.Lock()
        self._busy: dict[str, tuple[int, float]] = {}  # stage → (workers in it, since when)
        self._convert_pool = ThreadPoolExecutor(
            max_workers=self.settings.convert_workers, thread_name_prefix="pyramid-convert"
        )

    def _enter(self, stage: str) -> None:
        with self._timings_lock:
            count, since = self._busy.get(stage, (0, 0.0))
            self._busy[stage] = (count + 1, time.perf_counter() if count == 0 else since)

    def _leave(self, stage: str) -> None:
        # Wall-clock time with at least one worker in the stage: summing each document's time
        # instead reported `distill: 362.9` for a 42 s run with eight documents distilled at once.
        with self._timings_lock:
            count, since = self._busy[stage]
            self._busy[stage] = (count - 1, since)
            if count == 1:
                timings = self.report.timings
                timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - since

    @asynccontextmanager
    async def _timed(self, stage: str) -> AsyncIterator[None]:
        self._enter(stage)
        try:
            yield
        finally:
            self._leave(stage)

    def _count_encoded(self, pages: int, seconds: float) -> None:
        """The encoder stage's own throughput on pages, and which encoder it was."""
        encoder = self.report.encoder
        if not encoder:
            embedder = self.rt.embedder
            encoder.update(backend=embedder.backend, precision=embedder.precision, pages=0, seconds=0.0)
        encoder["pages"] += pages
        encoder["seconds"] += seconds
        encoder["pages_per_s"] = (
            round(encoder["pages"] / encoder["seconds"], 1) if encoder["seconds"] else None
        )

    def _clocked(self, stage: str, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn`` timed on the worker thread itself, so time spent queued for a worker is not counted."""

        def timed(*args: object) -> T:
            self._enter(stage)
            try:
                return fn(*args)
            finally:
                self._leave(stage)

        return timed

    # -- entry ----------------------------------------------------------------------------------
    async def run(
        self, paths: Sequence[str | Path], *, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> IngestReport:
        started = time.perf_counter()
        try:
            found = await asyncio.to_thread(discover, paths, include=include, exclude=exclude)
            self.rt.emit(ProgressEvent("start", total=len(found.files) + len(found.problems)))
            for problem in found.problems:
                self._finish_file_result(
                    FileResult(source=problem.path, outcome="failed", reason=problem.reason)
                )
                self._file_done(problem.path)
            await self._pipeline(found.files)
            if self.prune:
                from .sync import prune

                for result in await prune(self.rt, paths, found, dry_run=self.dry_run):
                    self._finish_file_result(result)
            if self.corpus_step and not self.dry_run:
                await self.finish_corpus()
        finally:
            self._convert_pool.shutdown(wait=False, cancel_futures=True)
        if self.distiller is not None:
            self.report.distiller = self.distiller.name
            self.report.price = self.distiller.price(self.report.usage)
        self.report.elapsed = time.perf_counter() - started
        return self.report

    async def finish_corpus(self) -> None:
        """What follows the documents: the corpus step (recollections) when distilling, then the
        BM25 compaction. Both are driven by the database's state, so any process may run them.
        Items stored without a vector (by workers that leave embedding to others) are embedded
        first: recollections are found by the vectors of what they join."""
        from .reembed import embed_pending

        embedded = await embed_pending(self.rt)
        if embedded:
            self.rt.say(f"Embedded {embedded} item(s) that were stored without a vector.")
        if self.distiller is not None:
            await self._corpus_step()
        from .search.hybrid import compact

        # Keep the BM25 delta tables short: every search sums the deltas it reads.
        checkpoint("compact")
        await compact(self.rt.db, k1=self.settings.bm25_k1, b=self.settings.bm25_b)

    async def _corpus_step(self) -> None:
        """Recollections, after the documents. Driven by what the database says is pending, not by
        what this run wrote: documents stored as 'distilled' and removals since the last refresh
        (a flag written with them). A run killed between storing documents and refreshing the
        recollections leaves them pending, so the next run finishes the job."""
        from . import store

        assert self.distiller is not None
        async with self.rt.db.connection() as conn:
            pending, changed = await store.corpus_pending(conn)
        if not pending and not changed:
            return
        self.rt.emit(ProgressEvent("stage", message="recollections"))
        try:
            checkpoint("corpus.begin")
            self.report.usage += await self.distiller.finish(self.rt, pending)
            checkpoint("corpus.recollections")
        except DistillationError as exc:
            self.report.usage += exc.usage or Usage()
            self.rt.say(f"Recollections were not updated (the next run tries again): {exc}")
            return
        async with self.rt.db.connection() as conn, conn.transaction():
            await store.corpus_done(conn, pending)
        checkpoint("corpus.done")

    # -- stages ---------------------------------------------------------------------------------
    async def _pipeline(self, files: list[Path]) -> None:
        """Four stages joined by queues. A converted document goes both to the encoder and to
        distillation at once: a distiller reads page text, not page vectors, so LLM calls never
        wait behind the encoder (measured: routed through it, an LLM run reached a third of the
        model's capacity). A distilled document waits for its page vectors only in the writer,
        which holds no LLM slot."""
        to_embed: asyncio.Queue = asyncio.Queue(maxsize=256)
        to_distill: asyncio.Queue = asyncio.Queue(maxsize=16)
        to_write: asyncio.Queue = asyncio.Queue()
        # Twice as many distilling tasks as documents distilled at once: an LLM distiller holds
        # one of its `concurrency` slots only while it talks to the model, so while some documents
        # embed their items the others keep every slot busy (see pyramid.distill.llm).
        distillers = max(1, 2 * self.concurrency if self.distiller else 1)
        tasks = [
            asyncio.create_task(self._produce(files, to_embed, to_distill)),
            asyncio.create_task(self._embed(to_embed)),
            *(asyncio.create_task(self._distill(to_distill, to_write)) for _ in range(distillers)),
            *(asyncio.create_task(self._write(to_write)) for _ in range(WRITERS)),
        ]
        producer, embedder, stages = tasks[0], tasks[1], tasks[2 : 2 + distillers]

        async def close_in_order() -> None:
            await producer
            await to_embed.put(_DONE)
            for _ in stages:
                await to_distill.put(_DONE)
            await asyncio.gather(embedder, *stages)
            for _ in range(WRITERS):
                await to_write.put(_DONE)
            await asyncio.gather(*tasks)

        closer = asyncio.create_task(close_in_order())
        try:
            # A stage that fails (the encoder, say) must not leave the others waiting on its queue.
            done, _ = await asyncio.wait([closer, *tasks], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                failure = None if task.cancelled() else task.exception()
                if failure is not None:
                    raise failure
            await closer
        except BaseException:
            for task in (closer, *tasks):
                task.cancel()
            raise

    async def _produce(self, files: list[Path], to_embed: asyncio.Queue, to_distill: asyncio.Queue) -> None:
        """Hash each file, skip the unchanged ones, convert the others (on worker threads), and
        hand every document to the encoder and to distillation."""
        from .store import documents_of_paths

        limit = asyncio.Semaphore(self.settings.convert_workers * 2)
        # What is stored for every file, in one query: a nightly sync of unchanged files is then
        # one round trip plus the hashing (the writer lock keeps other runs from changing it).
        async with self.rt.db.connection() as conn:
            stored = await documents_of_paths(conn, [str(path) for path in files])

        async def one(path: Path) -> None:
            async with limit:
                self.rt.emit(ProgressEvent("file", path=str(path), files_done=self.files_done))
                job = await self._prepare(path, stored.get(str(path), []))
                if job is None:
                    return
                docs = await self._convert(job)
                if docs is None:
                    return
                for doc in docs:
                    prepared = await self._prepared(job, doc)
                    await to_embed.put(prepared)
                    await to_distill.put((job, prepared))

        tasks = [asyncio.create_task(one(path)) for path in files]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    async def _prepare(self, path: Path, stored: list[StoredFileState]) -> _FileJob | None:
        from .convert import file_sha256

        loop = asyncio.get_running_loop()
        job = _FileJob(path=path, stored=stored)
        try:
            stat = path.stat()
            job.size, job.mtime = stat.st_size, stat.st_mtime
            job.sha256 = await loop.run_in_executor(
                self._convert_pool, self._clocked("hash", file_sha256), path
            )
            checkpoint("file.hashed")
        except OSError as exc:
            await self._fail_file(job, f"cannot read file: {exc.strerror or exc}")
            return None
        if not self.force and is_unchanged(stored, job.sha256, self._done_states):
            for state in stored:
                job.results.append(FileResult(source=state.source, outcome="unchanged"))
            self._finish_job(job)
            return None
        return job

    async def _convert(self, job: _FileJob) -> list[ConvertedDocument] | None:
        from .convert import convert_file

        loop = asyncio.get_running_loop()
        self.rt.step(str(job.path), "converting")
        try:
            docs = await loop.run_in_executor(
                self._convert_pool,
                self._clocked(
                    "convert",
                    lambda: convert_file(
                        job.path,
                        max_page_chars=self.settings.page_chars,
                        max_file_bytes=self.settings.max_file_bytes,
                    ),
                ),
            )
            checkpoint("file.converted")
        except ConversionError as exc:
            await self._fail_file(job, exc.reason)
            return None
        except Exception as exc:  # one bad file never stops a batch: report it with its reason
            if _raise_unexpected():
                raise
            await self._fail_file(job, f"conversion failed ({type(exc).__name__}: {exc})")
            return None
        stored = {s.source: s for s in job.stored}
        fresh: list[ConvertedDocument] = []
        for doc in docs:
            before = stored.get(doc.source)
            if (
                not self.force
                and before is not None
                and before.sha256 == doc.sha256
                and before.status in self._done_states
            ):
                # A feed whose file changed but whose item did not: record the file hash only.
                if not self.dry_run:
                    await self._touch_file_hash(before, job.sha256)
                job.results.append(FileResult(source=doc.source, outcome="unchanged", title=doc.title))
            else:
                fresh.append(doc)
        gone = [s for s in job.stored if s.source not in {d.source for d in docs}]
        if gone and not self.dry_run:
            await self._remove(job, gone)
        if self.dry_run:
            for doc in fresh:
                outcome = "updated" if doc.source in stored else "added"
                # What distilling it would spend, before anything is spent.
                estimate = self.distiller.estimate(doc.pages, title=doc.title) if self.distiller else Usage()
                self.report.usage += estimate
                job.results.append(
                    FileResult(
                        source=doc.source,
                        outcome=outcome,
                        title=doc.title,
                        pages=len(doc.pages),
                        usage=estimate,
                    )
                )
            self._finish_job(job)
            return None
        job.pending_docs = len(fresh)
        if not fresh:
            self._finish_job(job)
            return None
        return fresh

    async def _prepared(self, job: _FileJob, doc: ConvertedDocument) -> PreparedDocument:
        """The document's page items. A changed document keeps its unchanged pages (same text, even
        when a page inserted or deleted before them renumbers them): they are neither re-embedded
        nor rewritten, and what was built on them keeps pointing at them."""
        stored = next((s for s in job.stored if s.source == doc.source), None)
        unchanged: dict[int, int] = {}
        if stored is not None and not self.force:
            async with self.rt.db.connection() as conn:
                old = await stored_pages(conn, stored.id)
            # Paired in order by text (a longest common subsequence of hashes), so repeated
            # identical pages pair one to one.
            aligned = align_pages(
                [p.content_hash or "" for p in old], [text_hash(text) for text in doc.pages]
            )
            unchanged = {new: old[before - 1].id for before, new in aligned.items()}
        items = [
            NewItem(
                key=f"page:{number}",
                level="page",
                ordinal=number,
                text=text,
                pages=[number],
                content_hash=text_hash(text),
                existing_id=unchanged.get(number),
            )
            for number, text in enumerate(doc.pages, start=1)
        ]
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return PreparedDocument(doc, job.sha256, job.size, job.mtime, items, stored, pages_ready=ready)

    async def _embed(self, inbox: asyncio.Queue) -> None:
        """Encode pages in batches that span documents, so many small files still fill a batch."""
        target = max(self.settings.embedding_batch_size * 4, 64)
        finished = False
        while not finished:
            first = await inbox.get()
            if first is _DONE:
                break
            batch = [first]
            pages = len(first.pages)
            while pages < target:
                try:
                    nxt = inbox.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is _DONE:
                    finished = True
                    break
                batch.append(nxt)
                pages += len(nxt.pages)
            await self._embed_batch(batch)

    async def _embed_batch(self, batch: list[PreparedDocument]) -> None:
        # The pages to encode, each with its document (none when embedding is left to others).
        todo = [
            (prepared.converted.source, item)
            for prepared in batch
            for item in prepared.pages
            if item.existing_id is None and self.embed
        ]
        owners = [source for source, _ in todo]
        fresh = [item for _, item in todo]
        totals = {source: owners.count(source) for source in set(owners)}
        done = dict.fromkeys(totals, 0)
        # In chunks of a few encoder batches, each reported: a 90-page file's pages took minutes
        # in one call with nothing on the screen.
        chunk = max(self.settings.embedding_batch_size * 2, 32)
        vectors: list[Any] = []
        for source, total in totals.items():  # converted, now waiting for (or in) the encoder
            self.rt.step(source, "embedding pages", 0, total)
        try:
            async with self._timed("embed"):
                for start in range(0, len(fresh), chunk):
                    part, seconds = await self.rt.embedder.aencode_documents_timed(
                        [item.embedded_text for item in fresh[start : start + chunk]]
                    )
                    self._count_encoded(len(part), seconds)
                    vectors.extend(part)
                    for source in owners[start : start + chunk]:
                        done[source] += 1
                    for source in dict.fromkeys(owners[start : start + chunk]):
                        self.rt.step(source, "embedding pages", done[source], totals[source])
        except BaseException as exc:
            for prepared in batch:
                assert prepared.pages_ready is not None
                prepared.pages_ready.set_exception(exc)
                prepared.pages_ready.exception()  # retrieved: the writer may never ask
            raise
        for item, vector in zip(fresh, vectors, strict=True):
            item.embedding = vector
        for prepared in batch:
            assert prepared.pages_ready is not None
            prepared.pages_ready.set_result(None)

    async def _distill(self, inbox: asyncio.Queue, out: asyncio.Queue) -> None:
        while True:
            entry = await inbox.get()
            if entry is _DONE:
                return
            job, prepared = entry
            outcome = await self._distill_one(job, prepared)
            await out.put((job, prepared, outcome))

    async def _write(self, inbox: asyncio.Queue) -> None:
        while True:
            entry = await inbox.get()
            if entry is _DONE:
                return
            job, prepared, outcome = entry
            result = (
                outcome if isinstance(outcome, FileResult) else await self._store_one(job, prepared, outcome)
            )
            job.results.append(result)
            job.pending_docs -= 1
            if job.pending_docs == 0:
                self._finish_job(job)

    async def _distill_one(self, job: _FileJob, prepared: PreparedDocument) -> Distilled | FileResult:
        """The distilled levels of one document, or the failure that it was recorded with."""
        doc = prepared.converted
        distilled = Distilled(items=[], distiller="", status="converted")
        if self.distiller is not None:
            try:
                async with self._timed("distill"):
                    distilled = await self.distiller.distill(self.rt, prepared)
                checkpoint("document.distilled")
            except DistillationError as exc:
                # The tokens were spent even though nothing is stored: the report counts them.
                self.report.usage += exc.usage or Usage()
                failed = await self._fail_doc(job, doc, str(exc))
                failed.usage = exc.usage or Usage()
                return failed
            except PyramidError as exc:
                return await self._fail_doc(job, doc, str(exc))
            except Exception as exc:  # a document that still fails is marked failed; the others finish
                if _raise_unexpected():
                    raise
                return await self._fail_doc(job, doc, f"distillation failed ({type(exc).__name__}: {exc})")
        return distilled

    async def _store_one(self, job: _FileJob, prepared: PreparedDocument, distilled: Distilled) -> FileResult:
        doc = prepared.converted
        await prepared.wait_pages()
        if self.embed:
            async with self._timed("embed"):
                await embed_new(self.rt.embedder.aencode_documents, distilled.items)
        record = DocumentRecord(
            source=doc.source,
            path=str(job.path),
            file_sha256=job.sha256,
            sha256=doc.sha256,
            title=doc.title,
            format=doc.format,
            page_count=len(doc.pages),
            paged=doc.paged,
            # Distilled documents wait for the corpus step (recollections), which marks them ready;
            # a partial one stays partial (not a done state: the next run distills it again).
            status="partial"
            if distilled.status == "partial"
            else "distilled"
            if self.distiller is not None
            else distilled.status,
            error="; ".join(distilled.failures) or None,
            distiller=distilled.distiller or None,
            usage=distilled.usage,
            meta=dict(doc.meta),
            file_size=job.size,
            file_mtime=job.mtime,
        )
        from . import store

        try:
            async with self._timed("write"), self.rt.db.connection() as conn, conn.transaction():
                doc_id, existed, _ = await store.replace_document(
                    conn, record, prepared.pages + distilled.items
                )
                if self.write_guard is not None:
                    # The file's last document, and none of its others failed: the job is done.
                    last = job.pending_docs == 1 and not any(r.outcome == "failed" for r in job.results)
                    await self.write_guard(conn, str(job.path), last)
                checkpoint("document.before-commit")
        except LeaseLostError as exc:  # rolled back: the job is another worker's now
            return FileResult(source=doc.source, outcome="failed", title=doc.title, reason=str(exc))
        except Exception as exc:  # a write that fails for one document must not lose the others
            if _raise_unexpected():
                raise
            return await self._fail_doc(job, doc, f"could not store ({type(exc).__name__}: {exc})")
        checkpoint("document.committed")
        self.report.usage += distilled.usage
        outcome: Outcome = "updated" if existed else "added"
        before = prepared.stored
        if (
            existed
            and self.distiller is not None
            and before is not None
            and before.status == "converted"
            and before.sha256 == doc.sha256
        ):
            outcome = "distilled"  # pages stored by a --no-distill run, the file unchanged since
        return FileResult(
            source=doc.source,
            outcome=outcome,
            title=doc.title,
            pages=len(doc.pages),
            usage=distilled.usage,
            partial=distilled.status == "partial",
            reason="; ".join(distilled.failures) or None,
        )

    # -- bookkeeping ----------------------------------------------------------------------------
    async def _fail_file(self, job: _FileJob, reason: str) -> None:

        if not self.dry_run:
            try:
                await self._record_file_failure(job, reason)
            except LeaseLostError as exc:  # rolled back: the job is another worker's now
                reason = str(exc)
        job.results.append(FileResult(source=str(job.path), outcome="failed", reason=reason))
        self._finish_job(job)

    async def _hold(self, conn: AsyncConnection, job: _FileJob) -> None:
        """Inside a write transaction: a queue worker checks it still holds the file's job."""
        if self.write_guard is not None:
            await self.write_guard(conn, str(job.path), False)

    async def _record_file_failure(self, job: _FileJob, reason: str) -> None:
        from . import store

        async with self.rt.db.connection() as conn, conn.transaction():
            await self._hold(conn, job)
            if job.stored:
                for state in job.stored:
                    await store.record_failure(
                        conn,
                        source=state.source,
                        path=str(job.path),
                        file_sha256=job.sha256 or None,
                        error=reason,
                    )
            else:
                await store.record_failure(
                    conn,
                    source=str(job.path),
                    path=str(job.path),
                    file_sha256=job.sha256 or None,
                    error=reason,
                )

    async def _fail_doc(self, job: _FileJob, doc: ConvertedDocument, reason: str) -> FileResult:
        from . import store

        try:
            async with self.rt.db.connection() as conn, conn.transaction():
                await self._hold(conn, job)
                await store.record_failure(
                    conn,
                    source=doc.source,
                    path=str(job.path),
                    file_sha256=job.sha256,
                    error=reason,
                    title=doc.title,
                )
        except LeaseLostError as exc:  # rolled back: the job is another worker's now
            reason = str(exc)
        return FileResult(source=doc.source, outcome="failed", title=doc.title, reason=reason)

    async def _touch_file_hash(self, state: StoredFileState, file_sha256: str) -> None:
        from . import store

        async with self.rt.db.connection() as conn:
            await store.touch_file_hash(conn, state.id, file_sha256)

    async def _remove(self, job: _FileJob, gone: list[StoredFileState]) -> None:
        from . import store

        try:
            async with self.rt.db.connection() as conn, conn.transaction():
                await self._hold(conn, job)
                removed = await store.delete_documents(conn, [s.id for s in gone])
        except LeaseLostError as exc:  # rolled back: the job is another worker's now
            job.results.append(FileResult(source=str(job.path), outcome="failed", reason=str(exc)))
            return
        for source in removed:
            job.results.append(FileResult(source=source, outcome="removed", reason="no longer in the file"))

    def _finish_job(self, job: _FileJob) -> None:
        for result in job.results:
            self._finish_file_result(result)
        self._file_done(str(job.path))

    def _finish_file_result(self, result: FileResult) -> None:
        self.report.results.append(result)
        self.rt.emit(ProgressEvent("result", result=result, path=result.source, files_done=self.files_done))

    def _file_done(self, path: str) -> None:
        self.files_done += 1
        self.rt.emit(ProgressEvent("done", path=path, files_done=self.files_done))
