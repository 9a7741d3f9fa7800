"""The Python API. The CLI is a thin layer over this class; every command is one method here.

    from pyramid import Pyramid

    with Pyramid.open(data_dir="~/kp") as kp:
        report = kp.ingest(["docs/"])
        for doc in kp.documents():
            print(doc.title, doc.pages)

Every method has an async twin (``aingest``, ``adocuments``, …); the sync method is derived from it
(``blocking``), so a parameter is written once. All work runs on a private event loop (see
``pyramid.portal``), so the sync methods are safe inside Jupyter or any running loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict, TypeVar, Unpack

from .config import OutputMode, Settings, load_settings
from .models import (
    LEVELS,
    ApiToken,
    CollectionInfo,
    DocumentInfo,
    DocumentView,
    Grant,
    IngestReport,
    ItemView,
    Level,
    Overview,
    RecollectionView,
    Stats,
    VerifyReport,
)
from .portal import Portal
from .runtime import ProgressCallback, ProgressEvent, Runtime

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.toolsets import FunctionToolset

    from .ask import AskListener
    from .models import Answer, Evidence, Expansion, Hit
    from .queue import EnqueueReport
    from .search.hybrid import SearchOptions
    from .search.tools import ToolSession
    from .store.database import BuildInfo
    from .store.jobs import JobRow
    from .worker import WorkerOptions, WorkerReport


P = ParamSpec("P")
T = TypeVar("T")
AsyncMethod = Callable[Concatenate["Pyramid", P], Coroutine[Any, Any, T]]


def on_loop(method: AsyncMethod[P, T]) -> AsyncMethod[P, T]:
    """Run an async method of ``Pyramid`` on the pyramid's own event loop, whichever loop awaits it
    (the pool and its connections belong to that loop)."""

    @functools.wraps(method)
    async def run(self: Pyramid, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._portal.acall(method(self, *args, **kwargs))

    return run


def blocking(method: AsyncMethod[P, T]) -> Callable[Concatenate[Pyramid, P], T]:
    """The sync twin of an async method: the same parameters, documentation and result, written once
    (``ingest = blocking(aingest)``). It blocks the calling thread, never the pyramid's loop."""

    @functools.wraps(method)
    def run(self: Pyramid, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.call(method(self, *args, **kwargs))

    name = method.__name__
    run.__name__ = run.__qualname__ = "sync" if name == "async_sync" else name.removeprefix("a")
    return run


class IngestOptions(TypedDict, total=False):
    """The keyword options of ``ingest`` and ``sync`` (defaults in brackets).

    ``include`` / ``exclude`` (()): globs over the paths below each folder. ``dry_run`` (False): write
    nothing, report the estimated tokens (and price) in ``usage``/``price``. ``force`` (False):
    re-ingest unchanged files too. ``wait`` (None: wait as long as it takes): seconds to wait for
    another writer. ``model`` (``settings.model``): a PydanticAI model string ("openai:gpt-4.1-mini",
    "anthropic:…", "ollama:…") or ``Model`` instance distils with an LLM; none, or "extractive",
    uses the extractive distiller (no LLM). ``concurrency`` (``settings.concurrency``): documents
    distilled at once. ``distill`` (True): False stores pages only (status "converted"); a later run
    with distillation distills them without converting or embedding the pages again. ``workers``
    (None): queue the files and run this many local worker processes over the queue (see
    ``awork``); no writer lock is taken while they work (``prune`` takes it afterwards), and
    ``dry_run`` and ``force`` are not offered."""

    include: Sequence[str]
    exclude: Sequence[str]
    dry_run: bool
    force: bool
    wait: float | None
    model: str | Model | None
    concurrency: int | None
    distill: bool
    workers: int | None


class Opening:
    """What ``Pyramid.aopen`` returns: await it for the ``Pyramid`` (``kp = await Pyramid.aopen()``)
    or use it directly as an async context manager (``async with Pyramid.aopen() as kp``), which
    closes the pyramid at the end of the block."""

    def __init__(self, opening: Coroutine[Any, Any, Pyramid]) -> None:
        self._opening: Coroutine[Any, Any, Pyramid] | None = opening
        self._opened: Pyramid | None = None

    def __await__(self) -> Generator[Any, None, Pyramid]:
        if self._opening is None:
            raise RuntimeError("this Pyramid.aopen(...) was already awaited")
        opening, self._opening = self._opening, None
        return opening.__await__()

    async def __aenter__(self) -> Pyramid:
        self._opened = await self
        return self._opened

    async def __aexit__(self, *exc: object) -> None:
        if self._opened is not None:
            await self._opened.aclose()

    def __del__(self) -> None:
        if self._opening is not None:  # never awaited: no "coroutine was never awaited" warning
            self._opening.close()


class Pyramid:
    """A knowledge pyramid stored in one PostgreSQL database.

    Every operation is an async method (``aingest``, ``asearch``, …) with a sync twin derived from it
    (``ingest``, ``search``, …): the same parameters and result, documented once."""

    def __init__(self, rt: Runtime, portal: Portal) -> None:
        # Use Pyramid.open() / Pyramid.aopen(); the constructor only wires finished parts together.
        from .search.evidence import Labels

        self._rt = rt
        self._portal = portal
        self._closed = False
        self._labels = Labels()  # what evidence() and expand() name documents by
        self._parent: Pyramid | None = (
            None  # a scoped view (``ascoped``) shares its parent's loop and encoder
        )

    # -- opening and closing ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        *,
        data_dir: str | Path | None = None,
        dsn: str | None = None,
        embedding_model: str | None = None,
        settings: Settings | None = None,
        progress: ProgressCallback | None = None,
        check_model: bool = True,
        warm_encoder: bool = False,
        **overrides: Any,
    ) -> Pyramid:
        """Open (creating and migrating when needed) the pyramid at ``dsn`` or in the embedded
        PostgreSQL under ``data_dir``. ``warm_encoder``: load the embedding model while the database
        opens (a search's first query then finds it ready). Other keyword arguments are settings
        (see ``Settings``)."""
        settings = _settings(
            settings, data_dir=data_dir, dsn=dsn, embedding_model=embedding_model, **overrides
        )
        portal = Portal()
        try:
            rt = portal.call(_open_runtime(settings, progress, check_model, warm_encoder))
        except BaseException:
            portal.close()
            raise
        return cls(rt, portal)

    @classmethod
    def aopen(
        cls,
        *,
        data_dir: str | Path | None = None,
        dsn: str | None = None,
        embedding_model: str | None = None,
        settings: Settings | None = None,
        progress: ProgressCallback | None = None,
        check_model: bool = True,
        warm_encoder: bool = False,
        **overrides: Any,
    ) -> Opening:
        """``open`` for async code: ``async with Pyramid.aopen(...) as kp`` (closed at the end of the
        block), or ``kp = await Pyramid.aopen(...)`` (close it with ``await kp.aclose()``)."""
        settings = _settings(
            settings, data_dir=data_dir, dsn=dsn, embedding_model=embedding_model, **overrides
        )
        return Opening(cls._aopen(settings, progress, check_model, warm_encoder))

    @classmethod
    async def _aopen(
        cls, settings: Settings, progress: ProgressCallback | None, check_model: bool, warm_encoder: bool
    ) -> Pyramid:
        portal = Portal()
        try:
            rt = await portal.acall(_open_runtime(settings, progress, check_model, warm_encoder))
        except BaseException:
            await asyncio.to_thread(portal.close)
            raise
        return cls(rt, portal)

    def close(self) -> None:
        if self._closed:
            return
        if self._parent is not None:
            self._closed = True
            self._portal.call(self._rt.db.close())
            return
        self._closed = True
        try:
            self._portal.call(self._aclose_runtime())
        finally:
            self._portal.close()

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._parent is not None:
            self._closed = True
            await self._portal.acall(self._rt.db.close())
            return
        self._closed = True
        try:
            await self._portal.acall(self._aclose_runtime())
        finally:
            await asyncio.to_thread(self._portal.close)

    async def _aclose_runtime(self) -> None:
        await self._rt.db.close()
        self._rt.embedder.close()

    def __enter__(self) -> Pyramid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Pyramid:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- properties and hooks -------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._rt.settings

    @property
    def url(self) -> str:
        """The PostgreSQL URL of this pyramid (``psql "$(pyramid db url)"``)."""
        return self._rt.db.url

    @property
    def build(self) -> BuildInfo:
        """What the database was built with: embedding model and dimension, schema version."""
        assert self._rt.db.build is not None
        return self._rt.db.build

    @property
    def runtime(self) -> Runtime:
        """The parts every operation uses: ``settings``, ``db`` (the connection pool, its advisory
        locks) and ``embedder``. They live on the pyramid's own event loop: use them in a coroutine
        handed to ``run``/``arun``. For scripts that go below the API (benchmarks, tests)."""
        return self._rt

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the pyramid's event loop and wait for its result, e.g.
        ``kp.run(kp.runtime.embedder.aload())``. Not from inside that loop (a coroutine it runs)."""
        return self._portal.call(coro)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the pyramid's event loop, from any event loop."""
        return await self._portal.acall(coro)

    @property
    def collection(self) -> str:
        """The collection this pyramid writes to (the first of ``collections``)."""
        return self._rt.db.collection

    @property
    def collections(self) -> tuple[str, ...]:
        """The collections this pyramid reads: search, ask, expand, documents, overview, the toolset
        and MCP see only these."""
        return self._rt.db.collections

    def require_collections(self) -> None:
        """Raise CollectionError unless every collection this pyramid was opened with exists (and,
        for a role under row-level security, may be read by it)."""
        from .errors import CollectionError

        missing = self._rt.db.missing_collections
        if missing:
            known = ", ".join(sorted(self._rt.db.known_collections)) or "none"
            raise CollectionError(
                f"there is no collection {missing[0]!r} that this connection can read "
                f"(collections: {known}); ingesting into it creates it"
            )

    def set_progress(self, progress: ProgressCallback | None) -> None:
        """Receive ProgressEvents from long operations (called on Pyramid's own thread)."""
        self._rt.progress = progress or (lambda _event: None)

    # -- ingest and sync ------------------------------------------------------------------------
    @on_loop
    async def aingest(
        self,
        paths: Sequence[str | Path] | str | Path,
        *,
        prune: bool = False,
        **options: Unpack[IngestOptions],
    ) -> IngestReport:
        """Ingest files and folders (recursively) and distill them into the pyramid. Unchanged files
        are skipped; changed ones are replaced atomically; a file that fails is reported in the
        result, never raised. ``prune``: also remove the documents whose files no longer exist below
        ``paths`` (what ``sync`` does). Options: see ``IngestOptions``."""
        from .distill import make_distiller
        from .ingest import Ingest

        if isinstance(paths, (str, Path)):
            paths = [paths]
        concurrency = options.get("concurrency")
        if concurrency is not None and not 1 <= concurrency <= 512:
            from .errors import ConfigError

            raise ConfigError(f"concurrency must be between 1 and 512, not {concurrency}")
        dry_run = options.get("dry_run", False)
        include, exclude = options.get("include", ()), options.get("exclude", ())
        if options.get("workers") is not None:
            return await self._ingest_with_workers(paths, prune=prune, **options)
        distiller = (
            make_distiller(
                self._rt.settings, options.get("model"), concurrency=concurrency, resolve=not dry_run
            )
            if options.get("distill", True)
            else None
        )
        run = Ingest(
            self._rt,
            distiller=distiller,
            dry_run=dry_run,
            force=options.get("force", False),
            concurrency=concurrency,
            prune=prune,
        )
        if dry_run:
            return await run.run(paths, include=include, exclude=exclude)
        what = "this sync" if prune else "this ingest"
        async with self._rt.db.writer_lock(wait=options.get("wait"), what=what):
            return await run.run(paths, include=include, exclude=exclude)

    ingest = blocking(aingest)

    @on_loop
    async def async_sync(
        self,
        paths: Sequence[str | Path] | str | Path,
        *,
        prune: bool = True,
        **options: Unpack[IngestOptions],
    ) -> IngestReport:
        """Make the pyramid match ``paths``: ``ingest`` new and changed files, and (``prune``) remove
        the documents whose files no longer exist below them. Meant for cron: see the README. The
        async twin is ``async_sync`` (``async`` itself is a Python keyword). At the end the stale
        learned recollections get the cheap check (``verify_recollections`` without a model);
        ``IngestReport.recollections`` counts the verdicts."""
        report = await self.aingest(paths, prune=prune, **options)
        if not options.get("dry_run", False):
            from .verify import verify

            checked = await verify(self._rt)
            report.recollections = {s: checked.count(s) for s in ("valid", "retired") if checked.count(s)}
        return report

    sync = blocking(async_sync)

    async def _ingest_with_workers(
        self, paths: Sequence[str | Path], *, prune: bool, **options: Unpack[IngestOptions]
    ) -> IngestReport:
        from .errors import ConfigError
        from .queue import ingest_with_workers

        workers = options.get("workers") or 0
        if not 1 <= workers <= 64:
            raise ConfigError(f"workers must be between 1 and 64, not {workers}")
        for name in ("dry_run", "force"):
            if options.get(name):
                raise ConfigError(f"--{name.replace('_', '-')} cannot be combined with --workers")
        model = options.get("model")
        if model is not None and not isinstance(model, str):
            raise ConfigError(
                "with workers, the model is named by a string (each worker process builds its own)"
            )
        from .distill import make_distiller

        include, exclude = options.get("include", ()), options.get("exclude", ())
        distiller = make_distiller(self._rt.settings, model) if options.get("distill", True) else None
        report = await ingest_with_workers(
            self._rt,
            paths,
            workers=workers,
            include=include,
            exclude=exclude,
            model=model,
            distill=options.get("distill", True),
            concurrency=options.get("concurrency"),
            distiller=distiller,
        )
        if prune:
            from .queue import prune_after_workers

            report.results.extend(
                await prune_after_workers(
                    self._rt,
                    paths,
                    include=include,
                    exclude=exclude,
                    distiller=distiller,
                    wait=options.get("wait"),
                )
            )
        return report

    # -- the queue ------------------------------------------------------------------------------
    @on_loop
    async def aenqueue(
        self,
        paths: Sequence[str | Path] | str | Path,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        distill: bool = True,
        max_attempts: int = 3,
    ) -> EnqueueReport:
        """Queue one ingest job per new or changed file below ``paths`` for the workers
        (``awork``, ``pyramid worker``); enqueuing the same file content twice leaves one job."""
        from .queue import enqueue

        if isinstance(paths, (str, Path)):
            paths = [paths]
        await self._rt.db.ensure_collection()
        return await enqueue(
            self._rt, paths, include=include, exclude=exclude, distill=distill, max_attempts=max_attempts
        )

    enqueue = blocking(aenqueue)

    @on_loop
    async def awork(
        self,
        options: WorkerOptions | None = None,
        *,
        model: str | Model | None = None,
        distill: bool = True,
        concurrency: int | None = None,
        distiller: Any = None,
        all_collections: bool = False,
    ) -> WorkerReport:
        """Work on the queue as one worker (``pyramid worker``) until ``options`` say to stop
        (``once``, ``drain``, ``max_jobs``; by default forever). ``distiller`` overrides
        ``model`` (tests and benchmarks pass their own). ``all_collections``: work for every
        collection this connection can see, each on a pyramid scoped to it (found anew as
        collections are made), instead of the one written to."""
        from .distill import make_distiller
        from .worker import Worker, work_all

        if distiller is None and distill:
            distiller = make_distiller(self._rt.settings, model, concurrency=concurrency)
        if all_collections:
            return await work_all(self, distiller=distiller, options=options, concurrency=concurrency)
        await self._rt.db.ensure_collection()
        worker = Worker(self._rt, distiller=distiller, options=options, concurrency=concurrency)
        return await worker.run()

    work = blocking(awork)

    @on_loop
    async def ajobs(self, *, status: str | None = None) -> list[JobRow]:
        """The queue's jobs (optionally of one status: queued, running, done, failed), oldest first."""
        from .errors import ConfigError
        from .store import jobs

        if status is not None and status not in jobs.JOB_STATUSES:
            raise ConfigError(f"no job status {status!r} (one of {', '.join(jobs.JOB_STATUSES)})")
        async with self._rt.db.connection() as conn:
            return await jobs.list_jobs(conn, status=status)

    jobs = blocking(ajobs)

    @on_loop
    async def aunembedded(self) -> int:
        """Items stored without a vector yet: the backlog of ``pyramid worker --stages embed``
        (documents written by ``--stages convert,distill`` workers). They are found by BM25 only
        until they are embedded."""
        from .store import maintenance

        async with self._rt.db.connection() as conn:
            return await maintenance.count_unembedded(conn)

    unembedded = blocking(aunembedded)

    @on_loop
    async def aretry_jobs(self, ids: Sequence[int] | None = None) -> list[int]:
        """Queue the failed jobs (all, or ``ids``) again with their attempts reset; returns their ids."""
        from .store import jobs

        async with self._rt.db.connection() as conn:
            return await jobs.retry(conn, ids)

    retry_jobs = blocking(aretry_jobs)

    @on_loop
    async def acorpus(self, *, model: str | Model | None = None, distill: bool = True) -> None:
        """The corpus step now (recollections of the documents waiting for it, BM25 compaction),
        under the lock the workers take for it."""
        from .distill import make_distiller
        from .worker import run_corpus_step

        distiller = make_distiller(self._rt.settings, model) if distill else None
        await run_corpus_step(self._rt, distiller)

    corpus = blocking(acorpus)

    # -- reading --------------------------------------------------------------------------------
    @on_loop
    async def adocuments(
        self, *, status: str | None = None, named: str | int | None = None
    ) -> list[DocumentInfo]:
        """Every stored document (optionally only those with ``status``), ordered by source; with
        ``named``, the documents a name refers to: one for an id, a source or a unique file name,
        every item of a feed for the feed's file (``"news.rss"``)."""
        from . import store

        async with self._rt.db.connection() as conn:
            if named is None:
                return await store.list_documents(conn, status=status)
            ids = await store.resolve_documents(conn, named)
            docs = [await store.get_document(conn, doc_id) for doc_id in ids]
        return [doc for doc in docs if status is None or doc.status == status]

    documents = blocking(adocuments)

    @on_loop
    async def adocument(self, ref: str | int, *, pages: bool = True) -> DocumentView:
        """One document by id, source path or unique file name, with its stored levels top-down."""
        from . import store

        async with self._rt.db.connection() as conn:
            doc_id = await store.resolve_document(conn, ref)
            info = await store.get_document(conn, doc_id)
            levels: list[Level] | None = None if pages else ["insight", "concept", "abstract"]
            items = await store.document_items(conn, doc_id, levels=levels)
            recollections = await store.document_recollections(conn, doc_id)
        view = DocumentView(document=info, recollections=recollections)
        for item in items:
            {
                "page": view.pages,
                "insight": view.insights,
                "concept": view.concepts,
                "abstract": view.abstract,
                "recollection": view.recollections,
            }[item.level].append(item)
        return view

    document = blocking(adocument)

    # -- search ---------------------------------------------------------------------------------
    @on_loop
    async def asearch(self, query: str, **options: Unpack[SearchOptions]) -> list[Hit]:
        """Hybrid search (BM25 + vector, per level, fused). Options: ``levels`` (any of page,
        insight, concept, abstract, recollection; default every level that has items), ``k``,
        ``mode`` (hybrid | bm25 | vector), ``documents`` (globs over document sources), ``rerank``
        (True: the configured or default cross-encoder; a model name or path; False), ``fusion``
        (weighted | rrf)."""
        from .search.hybrid import search

        return await search(self._rt, query, **options)

    search = blocking(asearch)

    # -- asking, and the pyramid as tools for other agents ----------------------------------------
    @on_loop
    async def aask(
        self,
        question: str,
        *,
        model: str | Model | None = None,
        levels: Sequence[str] | str | None = None,
        output_mode: OutputMode | None = None,
        on_event: AskListener | None = None,
        rerank: bool | str | None = None,
        learn: bool | None = None,
    ) -> Answer:
        """Answer ``question`` with citations ``[file, p. N]`` and the tokens it cost. ``model``: a
        PydanticAI model string or ``Model`` (default ``settings.model``); with none, the result is
        the best evidence across levels, not an answer (``Answer.answered`` is False). ``levels``:
        what the search agent may search (default ``settings.ask_levels``: all but pages).
        ``output_mode`` (default ``settings.output_mode``): ``auto``/``tool`` research with tools,
        ``native``/``prompted`` retrieve-then-answer without tools. A misbehaving model gives a
        partial answer (``Answer.partial``, ``stopped``), never an error; ``ModelError`` only when the
        model cannot be reached. ``on_event``: called with each ``AskEvent`` (research steps, answer
        text as it is written, the answer) on Pyramid's own thread; it must return quickly.
        ``rerank``: as for ``search`` (None: the configured reranker, if any; True: that or the
        default cross-encoder; a name or path; False). ``learn`` (default ``settings.ask_learn``):
        store the answer's cited finding as a learned recollection (``Answer.learned`` says what was
        stored, or why nothing was; see ``pyramid.learn``)."""
        from .ask import ask

        answer = await ask(
            self._rt,
            question,
            model=model,
            levels=levels,
            output_mode=output_mode,
            on_event=on_event,
            rerank=rerank,
        )
        if self._rt.settings.ask_learn if learn is None else learn:
            from .learn import learn as learn_from

            answer.learned = await learn_from(self._rt, answer)
        return answer

    ask = blocking(aask)

    @on_loop
    async def aevidence(
        self, query: str, *, levels: Sequence[str] | str | None = None, k: int | None = None
    ) -> list[Evidence]:
        """Search, each hit as citable ``Evidence`` (``cite``: ``[file, p. N]``), as the ``search``
        tool returns it. ``levels`` default to ``settings.ask_levels`` (all but pages). Every call
        on this ``Pyramid`` names documents from one label table, like one tool session."""
        from .ask import levels_of
        from .search.evidence import search_items

        chosen = levels_of(levels, self._rt.settings.ask_levels)
        return await search_items(
            self._rt, query, levels=chosen, k=k or self._rt.settings.search_k, labels=self._labels
        )

    evidence = blocking(aevidence)

    @on_loop
    async def aexpand(self, item_id: int) -> Expansion:
        """One item and its neighbours in the pyramid: an insight's page(s), concepts and document
        abstract; a concept's insights; an abstract's concepts; a page's insights; a recollection's
        sources. Raises NotFoundError for an unknown id."""
        from .search.evidence import expand_item

        return await expand_item(self._rt, int(item_id), self._labels)

    expand = blocking(aexpand)

    def tool_session(
        self,
        *,
        levels: Sequence[Level] | None = None,
        max_k: int | None = None,
        on_found: Callable[[list[Evidence]], None] | None = None,
    ) -> ToolSession:
        """A new session of the agent tools: one label table for all its calls, so a citation keeps
        naming the same file. ``levels``: what ``search`` may search (default every level; without
        ``levels`` in the call it searches ``settings.ask_levels`` among them); ``max_k`` (50) bounds
        ``k``; ``on_found`` sees every item a call shows."""
        from .search.tools import MAX_K, ToolSession

        allowed = list(levels) if levels else list(LEVELS)
        default = [level for level in self._rt.settings.ask_levels if level in allowed] or allowed
        return ToolSession(
            self._rt,
            levels=allowed,
            default_levels=default,
            max_k=max_k or MAX_K,
            on_found=on_found,
            run=self.arun,
        )

    def toolset(
        self,
        *,
        levels: Sequence[Level] | None = None,
        max_k: int | None = None,
        on_found: Callable[[list[Evidence]], None] | None = None,
    ) -> FunctionToolset[Any]:
        """A PydanticAI toolset with the read-only tools ``search`` and ``expand`` over this pyramid,
        for any PydanticAI agent: ``Agent(model, toolsets=[kp.toolset()])``. Each toolset is one
        session (see ``tool_session`` for the options)."""
        from .search.tools import toolset

        return toolset(self.tool_session(levels=levels, max_k=max_k, on_found=on_found))

    def serve_mcp(self) -> None:
        """Serve ``search`` and ``expand`` over MCP on stdin/stdout until the client hangs up (what
        ``pyramid mcp`` runs), as one tool session. Blocks; call it from a thread without a running
        event loop."""
        from .search.tools import mcp_server

        mcp_server(self.tool_session()).run("stdio")

    # -- recollections and statistics -------------------------------------------------------------
    @on_loop
    async def aremember(
        self, text: str, *, source: str | int | Sequence[str | int] | None = None
    ) -> ItemView:
        """Add a recollection in your own words, optionally about one or more documents (id, path or
        unique file name): its audit trail. It is never replaced by a distiller, and goes stale when
        one of its documents changes or is removed."""
        from .memory import remember

        sources = [] if source is None else [source] if isinstance(source, (str, int)) else list(source)
        await self._rt.db.ensure_collection()
        return await remember(self._rt, text, sources=sources)

    remember = blocking(aremember)

    @on_loop
    async def arecollections(
        self, *, kind: str | Sequence[str] | None = None, stale: bool = False, all: bool = False
    ) -> list[RecollectionView]:
        """Recollections with their kind (distilled, user, learned), status (valid, stale, revised,
        retired), sources (items → pages → files) and history. ``kind``: one or more kinds;
        ``stale``: only stale ones; ``all``: retired ones too (they are kept, but never searched)."""
        from .recollections import recollections

        kinds = [kind] if isinstance(kind, str) else list(kind) if kind else None
        return await recollections(self._rt, kinds=kinds, stale=stale, all=all)

    recollections = blocking(arecollections)

    @on_loop
    async def arecollection(self, item_id: int) -> RecollectionView:
        """One recollection by item id with its whole audit trail; NotFoundError if there is none."""
        from .recollections import recollection

        return await recollection(self._rt, int(item_id))

    recollection = blocking(arecollection)

    @on_loop
    async def averify_recollections(
        self, *, model: str | Model | None = None, all: bool = False
    ) -> VerifyReport:
        """Re-check the stale learned recollections (``all``: every live one) against their sources
        as they read now. Without ``model``: each cited item must still be stored with the same text
        (``valid``), else the recollection is ``retired``. With one: the model judges whether the
        sources still support it (``valid``, ``revised`` with the old text on its history, or
        ``retired``). Retired recollections are kept, but never searched."""
        from .verify import verify

        return await verify(self._rt, model=model, every=all)

    verify_recollections = blocking(averify_recollections)

    @on_loop
    async def aoverview(self, *, model: str | Model | None = None) -> Overview:
        """What the collection holds: documents by format and size, the main themes (concepts
        central across documents, with how many documents each spans), what the recollections say,
        and example questions the pyramid can answer well, built from the themes; with ``model``
        (a model string or ``Model``), written by it (``questions_by``), the built ones kept, with a
        notice, when its answer cannot be used."""
        from .overview import overview

        return await overview(self._rt, model=model)

    overview = blocking(aoverview)

    @on_loop
    async def astats(self) -> Stats:
        """Item counts per level, documents per status, and the LLM tokens spent per step and per
        document."""
        from .memory import stats

        return await stats(self._rt)

    stats = blocking(astats)

    # -- collections and access -----------------------------------------------------------------
    @on_loop
    async def alist_collections(self) -> list[CollectionInfo]:
        """Every collection this connection can see (a role under row-level security: those it may
        read), with document and item counts and the roles granted access."""
        from .store.collections import list_collections

        async with self._rt.db.connection() as conn:
            return await list_collections(conn)

    list_collections = blocking(alist_collections)

    @on_loop
    async def aremove_collection(self, name: str) -> CollectionInfo:
        """Remove a collection with all its documents, items, statistics and access roles."""
        from .store.collections import remove_collection

        async with self._rt.db.connection() as conn:
            return await remove_collection(conn, name)

    remove_collection = blocking(aremove_collection)

    @on_loop
    async def agrant(self, role: str, collection: str, *, write: bool = False) -> Grant:
        """Let the PostgreSQL ``role`` (created if missing) read, or read and write, ``collection``:
        any connection as that role then sees and changes only its collections' rows."""
        from .store.collections import grant

        async with self._rt.db.connection() as conn:
            return await grant(conn, role, collection, write=write)

    grant = blocking(agrant)

    @on_loop
    async def arevoke(self, role: str, collection: str) -> bool:
        """Take ``role``'s access to ``collection`` away; False when it had none."""
        from .store.collections import revoke

        async with self._rt.db.connection() as conn:
            return await revoke(conn, role, collection)

    revoke = blocking(arevoke)

    @on_loop
    async def ascoped(
        self, *, collections: Sequence[str], role: str | None = None, pool_size: int = 2
    ) -> Pyramid:
        """The same pyramid seen through other collections and, with ``role``, as that PostgreSQL
        role (under its row-level security): its own connection pool, this pyramid's event loop and
        encoder. ``pyramid serve`` runs each API token's requests on one. Close it before this one."""
        from .store.database import Database

        parent = self._rt
        db = Database(
            parent.db.url,
            pool_size=min(pool_size, parent.settings.pool_size),
            collections=tuple(collections),
            role=role,
        )
        await db.open(
            embedding_model=parent.embedder.name,
            embedding_dim=lambda: parent.embedder.dimension,
            text_search_config=parent.settings.text_search_config,
            check_model=False,
        )
        settings = parent.settings.model_copy(update={"collection": ",".join(collections), "role": role})
        child = Pyramid(
            Runtime(settings=settings, db=db, embedder=parent.embedder, progress=parent.progress),
            self._portal,
        )
        child._parent = self
        return child

    # -- API tokens (pyramid serve) -------------------------------------------------------------
    @on_loop
    async def acreate_token(
        self, collections: Sequence[str], *, write: bool = False, name: str = ""
    ) -> tuple[ApiToken, str]:
        """A new API token for ``pyramid serve``, reading ``collections`` (and, with ``write``,
        writing the first): a PostgreSQL role is made for it and granted that access. Returns the
        record and the token, which is shown this once (only its sha256 is kept)."""
        from .store import tokens

        async with self._rt.db.connection() as conn:
            return await tokens.create(conn, collections, write=write, name=name)

    create_token = blocking(acreate_token)

    @on_loop
    async def atokens(self) -> list[ApiToken]:
        from .store import tokens

        async with self._rt.db.connection() as conn:
            return await tokens.list_tokens(conn)

    tokens = blocking(atokens)

    @on_loop
    async def afind_token(self, token: str) -> ApiToken | None:
        """The API token a request presented, or None (``pyramid serve``)."""
        from .store import tokens

        async with self._rt.db.connection() as conn:
            return await tokens.find(conn, token)

    @on_loop
    async def atoken_session(self, cookie: str) -> ApiToken | None:
        """The API token of a browser session cookie (``pyramid serve``), or None."""
        import hmac

        from .store import tokens

        parsed = tokens.parse_token_session(cookie)
        if parsed is None:
            return None
        async with self._rt.db.connection() as conn:
            found = await tokens.by_id(conn, parsed[0])
        if found is None or not hmac.compare_digest(tokens.token_session(parsed[0], found[1]), cookie):
            return None
        return found[0]

    @on_loop
    async def arevoke_token(self, token_id: int) -> ApiToken:
        """Delete an API token and its role: requests that present it are refused from now on."""
        from .store import tokens

        async with self._rt.db.connection() as conn:
            return await tokens.revoke(conn, token_id)

    revoke_token = blocking(arevoke_token)

    # -- maintenance ------------------------------------------------------------------------------
    @on_loop
    async def areembed(self, *, wait: float | None = None) -> int:
        """Re-embed every item with the configured embedding model and record it as the database's
        model (the fix for an embedding-model mismatch). Returns the number of items re-embedded."""
        from .reembed import reembed

        async with self._rt.db.writer_lock(wait=wait, what="re-embedding", everything=True):
            return await reembed(self._rt)

    reembed = blocking(areembed)


def _settings(settings: Settings | None, **flags: Any) -> Settings:
    # Pyramid.open(collections=["hr", "legal"]) is the setting collection="hr,legal".
    collections = flags.pop("collections", None)
    if collections is not None:
        if isinstance(collections, str):
            collections = [collections]
        flags["collection"] = ",".join(collections)
    if settings is None:
        return load_settings(**flags)
    given = {key: value for key, value in flags.items() if value is not None}
    return settings.model_copy(update=given) if given else settings


async def _open_runtime(
    settings: Settings, progress: ProgressCallback | None, check_model: bool, warm_encoder: bool = False
) -> Runtime:
    from .embed import Embedder
    from .store.database import Database, start_embedded

    def say(message: str) -> None:
        if progress is not None:
            progress(ProgressEvent("message", message=message))

    def stage(what: str) -> None:
        if progress is not None:
            progress(ProgressEvent("stage", message=what))

    url = settings.dsn
    if url is None:
        stage("starting the database")
        url = await asyncio.to_thread(start_embedded, settings.data_dir)
    stage("opening the database")

    def encoder(name: str) -> Embedder:
        made = Embedder(
            name,
            device=settings.embedding_device,
            batch_size=settings.embedding_batch_size,
            nice=settings.encoder_nice,
            backend=settings.embedding_backend,
            precision=settings.embedding_precision,
            cache_dir=settings.encoder_cache,
        )
        made.on_message = say
        return made

    embedder = encoder(settings.embedding_model)
    if warm_encoder:  # on the encoder's thread, while the database opens: ~0.4 s of a CLI search
        embedder.warm()
    # No model named (flag, PYRAMID_EMBEDDING_MODEL, pyramid.toml): use the one the database
    # records. After `reembed --embedding-model X` every command, even `ls`, asked for X again.
    follow = "embedding_model" not in settings.model_fields_set
    db = Database(
        url,
        pool_size=settings.pool_size,
        on_message=say,
        collections=settings.collections,
        role=settings.role,
    )
    try:
        await db.open(
            embedding_model=embedder.name,
            embedding_dim=lambda: embedder.dimension,
            text_search_config=settings.text_search_config,
            check_model=check_model and not follow,
            encoder={"backend": embedder.backend, "precision": embedder.precision},
        )
        assert db.build is not None
        if follow and db.build.embedding_model != embedder.name:
            settings = settings.model_copy(update={"embedding_model": db.build.embedding_model})
            embedder = encoder(db.build.embedding_model)
        if check_model:
            from .encoder_check import check_encoder

            await check_encoder(db, embedder, say)
    except BaseException:
        await db.close()
        raise
    runtime = Runtime(settings=settings, db=db, embedder=embedder, progress=progress or (lambda _e: None))
    # A load after opening (the first search or ingest) tells whoever listens then (set_progress).
    embedder.on_message = runtime.say
    return runtime
