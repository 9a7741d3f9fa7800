"""The ingest queue seen from the user's side: scanning folders into jobs (``pyramid ingest
--workers N`` and :meth:`Pyramid.aenqueue`), running local workers over them and waiting with
progress, and the report of what the workers did, in the shape of an ordinary ingest report."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .discover import discover
from .ingest import PAGES_ONLY_STATES, READY_STATES, is_unchanged
from .models import FileResult, IngestReport, Usage
from .runtime import ProgressEvent, Runtime
from .store import documents_of_paths, jobs

if TYPE_CHECKING:
    from .distill.base import Distiller

FORWARDED_SETTINGS = (
    "page_chars",
    "max_file_mb",
    "embedding_backend",
    "embedding_precision",
    "embedding_device",
    "embedding_batch_size",
    "convert_workers",
    "text_search_config",
    "llm_concurrency",
)


@dataclass
class EnqueueReport:
    """What a scan queued: ``enqueued`` new jobs, ``requeued`` finished jobs queued again (the
    stored document no longer matches the file), ``already`` jobs that were queued, running or
    failed for the same file content, ``unchanged`` files that need no work, and the files that
    could not even be found or read (``problems``)."""

    files: int = 0
    enqueued: int = 0
    requeued: int = 0
    already: int = 0
    unchanged: list[FileResult] = field(default_factory=list)
    problems: list[FileResult] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "enqueued": self.enqueued,
            "requeued": self.requeued,
            "already": self.already,
            "unchanged": len(self.unchanged),
            "problems": [p.model_dump(mode="json") for p in self.problems],
            "jobs": self.job_ids,
        }


async def enqueue(
    rt: Runtime,
    paths: Sequence[str | Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    distill: bool = True,
    max_attempts: int = 3,
) -> EnqueueReport:
    """One job per new or changed file below ``paths`` (the same rule as ingest: a file whose
    documents are all stored with its sha256 and done needs none)."""
    from .convert import file_sha256

    report = EnqueueReport()
    found = await asyncio.to_thread(discover, paths, include=include, exclude=exclude)
    report.problems = [FileResult(source=p.path, outcome="failed", reason=p.reason) for p in found.problems]
    report.files = len(found.files)
    async with rt.db.connection() as conn:
        stored = await documents_of_paths(conn, [str(path) for path in found.files])

    def hashed(path: Path) -> tuple[str, str, int] | FileResult:
        try:
            return str(path), file_sha256(path), path.stat().st_size
        except OSError as exc:
            return FileResult(
                source=str(path), outcome="failed", reason=f"cannot read file: {exc.strerror or exc}"
            )

    with ThreadPoolExecutor(max_workers=rt.settings.convert_workers) as pool:
        hashes = await asyncio.get_running_loop().run_in_executor(
            None, lambda: list(pool.map(hashed, found.files))
        )
    done_states = READY_STATES if distill else PAGES_ONLY_STATES
    todo: list[tuple[str, str, int]] = []
    for entry in hashes:
        if isinstance(entry, FileResult):
            report.problems.append(entry)
            continue
        states = stored.get(entry[0], [])
        if is_unchanged(states, entry[1], done_states):
            report.unchanged.extend(FileResult(source=s.source, outcome="unchanged") for s in states)
        else:
            todo.append(entry)
    if todo:
        async with rt.db.connection() as conn, conn.transaction():
            report.enqueued, report.requeued = await jobs.enqueue(conn, todo, max_attempts=max_attempts)
            report.job_ids = await jobs.ids_of(conn, [(source, sha) for source, sha, _ in todo])
        report.already = len(todo) - report.enqueued - report.requeued
    return report


def worker_command(
    *,
    model: str | None,
    distill: bool,
    concurrency: int | None,
    drain: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line of one local worker (a process of its own: conversion, encoding and the
    extractive distiller are CPU work that one Python process cannot spread over cores)."""
    command = [sys.executable, "-m", "pyramid", "worker", "--json"]
    if drain:
        command.append("--drain")
    if model is not None:
        command += ["--model", model]
    if not distill:
        command.append("--no-distill")
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return [*command, *extra]


async def ingest_with_workers(
    rt: Runtime,
    paths: Sequence[str | Path],
    *,
    workers: int,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    model: str | None = None,
    distill: bool = True,
    concurrency: int | None = None,
    distiller: Distiller | None = None,
) -> IngestReport:
    """Enqueue the files, run ``workers`` local worker processes until the queue is drained, and
    report what became of this scan's jobs (as ``ingest`` does; failed jobs with their reason).
    With nothing to queue no worker is started; the corpus step, which a worker would have run,
    runs here (with ``distiller``), so work a killed run left pending is still finished."""
    started = time.perf_counter()
    queued = await enqueue(rt, paths, include=include, exclude=exclude, distill=distill)
    rt.emit(ProgressEvent("start", total=queued.files + len(queued.problems)))
    if not queued.job_ids:
        from .worker import run_corpus_step

        async with rt.db.connection() as conn:
            waiting = await jobs.counts(conn)
        if not waiting["queued"] and not waiting["running"]:  # else the worker that drains runs it
            await run_corpus_step(rt, distiller)
        report = await jobs_report(rt, queued)
        report.elapsed = time.perf_counter() - started
        return report
    env = {**os.environ, "PYRAMID_DSN": rt.db.url, "PYRAMID_EMBEDDING_MODEL": rt.embedder.name}
    # What shapes the stored result travels with the workers, however it was given here (a flag,
    # a keyword of Pyramid.open), so a worker stores what this process's own ingest would.
    for name in FORWARDED_SETTINGS:
        value = getattr(rt.settings, name)
        if value is not None:
            env[f"PYRAMID_{name.upper()}"] = str(value)
    command = worker_command(model=model, distill=distill, concurrency=concurrency)
    procs = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(workers)
    ]
    waits = [asyncio.create_task(proc.communicate()) for proc in procs]
    shown = -1
    while not all(w.done() for w in waits):
        async with rt.db.connection() as conn:
            counts = await jobs.counts(conn, queued.job_ids)
        finished = len(queued.unchanged) + len(queued.problems) + counts["done"] + counts["failed"]
        if finished != shown:
            rt.emit(ProgressEvent("done", files_done=min(finished, queued.files + len(queued.problems))))
            shown = finished
        await asyncio.wait(waits, timeout=0.5)
    for proc, wait in zip(procs, waits, strict=True):
        _, stderr = wait.result()
        if proc.returncode not in (0, 1):
            rt.say(
                f"a worker exited with code {proc.returncode}: {stderr.decode(errors='replace').strip()[-500:]}"
            )
    report = await jobs_report(rt, queued)
    report.elapsed = time.perf_counter() - started
    return report


async def prune_after_workers(
    rt: Runtime,
    paths: Sequence[str | Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    distiller: Distiller | None = None,
    wait: float | None = None,
) -> list[FileResult]:
    """``sync --workers``: once the workers are done, remove the documents whose files are gone
    (the same conservative rule as ``sync``) under the writer lock, held alone, and run the corpus
    step again when something was removed."""
    from .ingest import Ingest
    from .sync import prune

    async with rt.db.writer_lock(wait=wait, what="this sync's pruning"):
        found = await asyncio.to_thread(discover, paths, include=include, exclude=exclude)
        removed = await prune(rt, paths, found)
        if removed:
            await Ingest(rt, distiller=distiller).finish_corpus()
    return removed


async def jobs_report(rt: Runtime, queued: EnqueueReport) -> IngestReport:
    """An ingest report of a scan's jobs: each job's results from its last attempt; a job that
    failed for good (or is still waiting) is one failed result with its reason."""
    report = IngestReport()
    report.results.extend(queued.problems)
    report.results.extend(queued.unchanged)
    async with rt.db.connection() as conn:
        rows = await jobs.list_jobs(conn, ids=queued.job_ids)
    for row in rows:
        results = [FileResult.model_validate(r) for r in row.results]
        if row.status == "done":
            report.results.extend(results)
        else:
            stored = [r for r in results if r.outcome != "failed"]
            report.results.extend(stored)
            reason = row.last_error or f"the job is {row.status}"
            if row.status != "failed":
                reason = f"not finished: the job is {row.status} (attempt {row.attempts}); {reason}"
            report.results.append(FileResult(source=row.source, outcome="failed", reason=reason))
        for result in results:
            report.usage += result.usage or Usage()
    report.workers = _per_worker(rows)
    return report


def _per_worker(rows: Sequence[jobs.JobRow]) -> dict[str, dict[str, Any]]:
    """Each worker's finished jobs and its rate over the time it had them (first claim to last done)."""
    spans: dict[str, list[Any]] = {}
    for row in rows:
        if row.status == "done" and row.lease_owner and row.started_at and row.finished_at:
            span = spans.setdefault(row.lease_owner, [0, row.started_at, row.finished_at])
            span[0] += 1
            span[1], span[2] = min(span[1], row.started_at), max(span[2], row.finished_at)
    found = {}
    for owner, (count, first, last) in sorted(spans.items()):
        seconds = (last - first).total_seconds()
        found[owner] = {"jobs": count, "jobs_per_s": round(count / seconds, 3) if seconds > 0 else None}
    return found
