"""``pyramid worker``, ``pyramid jobs`` (and ``jobs retry``), ``pyramid corpus``: the ingest queue."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from .common import (
    CollectionOption,
    DataDirOption,
    DsnOption,
    Group,
    JsonOption,
    command,
    display_path,
    err,
    group_options,
    open_pyramid,
    out,
    print_json,
    with_global_options,
)

jobs_app = typer.Typer(
    help="The ingest queue: list jobs (--failed for the dead letters), retry failed ones.",
    cls=Group,
    invoke_without_command=True,
)

FailedOption = Annotated[bool, typer.Option("--failed", help="Only the jobs that failed for good.")]
StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="Only jobs of this status: queued, running, done or failed."),
]


@jobs_app.callback()
def _jobs(
    ctx: typer.Context,
    failed: FailedOption = False,
    status: StatusOption = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    dsn: DsnOption = None,
    collection: CollectionOption = None,
) -> None:
    """The ingest queue: list jobs (--failed for the dead letters), retry failed ones."""
    group_options(data_dir, dsn, collection)
    if ctx.invoked_subcommand is not None:
        return
    with open_pyramid(check_model=False) as kp:
        rows = kp.jobs(status="failed" if failed else status)
        unembedded = kp.unembedded()
    if json_output:
        print_json([{**row.__dict__} for row in rows])
        return
    table = Table(title="Jobs", header_style="bold")
    for column in ("id", "file", "status", "attempts", "worker", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            display_path(row.source),
            row.status,
            f"{row.attempts}/{row.max_attempts}",
            row.lease_owner or "",
            row.last_error or "",
        )
    out.print(table)
    if unembedded:
        err.print(f"{unembedded} item(s) stored without a vector wait for `pyramid worker --stages embed`.")


@command(jobs_app, "add")
@with_global_options
def add(
    paths: Annotated[list[str], typer.Argument(help="Files and folders (folders recursively).")],
    include: Annotated[
        list[str] | None,
        typer.Option("--include", "-i", metavar="GLOB", help="Only files matching this glob."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", metavar="GLOB", help="Skip files matching this glob."),
    ] = None,
    distill: Annotated[
        bool, typer.Option("--distill/--no-distill", help="--no-distill stores pages only.")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Queue one job per new or changed file below PATHS for `pyramid worker`s, and do nothing else
    (the same file content queued twice is one job). Exit code 1 when a path could not be read."""
    with open_pyramid(check_model=False, creates=True) as kp:
        report = kp.enqueue(paths, include=include or (), exclude=exclude or (), distill=distill)
    if json_output:
        print_json(report.summary())
    else:
        err.print(
            f"Queued {report.enqueued} new and {report.requeued} changed file(s); {report.already} already "
            f"queued, {len(report.unchanged)} unchanged."
        )
        for problem in report.problems:
            err.print(f"[red]{display_path(problem.source)}[/red]: {problem.reason}", soft_wrap=True)
    if report.problems:
        raise typer.Exit(1)


@command(jobs_app, "retry")
@with_global_options
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Job ids (default: every failed job).")] = None,
) -> None:
    """Queue failed jobs again with their attempts reset (all of them, or the ids given)."""
    with open_pyramid(check_model=False) as kp:
        queued = kp.retry_jobs(ids or None)
    err.print(f"Queued {len(queued)} failed job(s) again.")


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")

    @command(app, "worker")
    @with_global_options
    def worker(
        once: Annotated[
            bool, typer.Option("--once", help="Exit as soon as no job can be claimed (for tests, cron).")
        ] = False,
        drain: Annotated[
            bool,
            typer.Option(
                "--drain", help="Exit when no job is queued or running (takes over expired leases)."
            ),
        ] = False,
        lease: Annotated[
            float, typer.Option("--lease", metavar="SECONDS", min=1, help="How long a claim lasts unrenewed.")
        ] = 60.0,
        batch: Annotated[
            int, typer.Option("--batch", metavar="N", min=1, max=256, help="Jobs claimed at once.")
        ] = 4,
        retry_delay: Annotated[
            float,
            typer.Option(
                "--retry-delay", metavar="SECONDS", min=0, help="A failed job waits this × its attempts."
            ),
        ] = 2.0,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Distill with this PydanticAI model. Default: PYRAMID_MODEL, else extractive.",
            ),
        ] = None,
        distill: Annotated[
            bool, typer.Option("--distill/--no-distill", help="--no-distill stores pages only.")
        ] = True,
        concurrency: Annotated[
            int | None,
            typer.Option(
                "--concurrency", "-c", metavar="N", min=1, max=512, help="Documents distilled at once."
            ),
        ] = None,
        llm_concurrency: Annotated[
            int | None,
            typer.Option(
                "--llm-concurrency",
                metavar="N",
                min=1,
                max=512,
                help="Documents talking to the model at once across all workers (counted in the database).",
            ),
        ] = None,
        stages: Annotated[
            str | None,
            typer.Option(
                "--stages",
                metavar="STAGES",
                help="What this worker does: convert,distill (store documents, leave their vectors to "
                "others), embed (fill the vectors in, run the corpus step), or all three (default).",
            ),
        ] = None,
        embed_batch: Annotated[
            int,
            typer.Option(
                "--embed-batch",
                metavar="N",
                min=1,
                max=65536,
                help="Items stored without a vector embedded per transaction (the embed stage).",
            ),
        ] = 256,
        all_collections: Annotated[
            bool,
            typer.Option(
                "--all-collections",
                help="Work for every collection of the database (each in turn), not only --collection.",
            ),
        ] = False,
        json_output: JsonOption = False,
    ) -> None:
        """Work on the ingest queue: claim jobs under a lease, ingest them, mark them done.

        Run any number, on any machines, against the same --dsn; a mixed fleet splits the work with
        --stages (CPU machines convert,distill, GPU machines embed).

        Exit code 0: every job this worker took is done; 1: some failed (see `pyramid jobs --failed`).
        """
        from ..worker import WorkerOptions, parse_stages

        options = WorkerOptions(
            lease=lease,
            batch=batch,
            retry_delay=retry_delay,
            once=once,
            drain=drain,
            stages=parse_stages(stages),
            embed_batch=embed_batch,
        )
        overrides: dict[str, Any] = {"llm_concurrency": llm_concurrency} if llm_concurrency else {}
        with open_pyramid(creates=True, **overrides) as kp:
            report = kp.work(
                options,
                model=model,
                distill=distill,
                concurrency=concurrency,
                all_collections=all_collections,
            )
        summary = report.summary()
        if json_output:
            print_json(summary)
        else:
            err.print(
                f"Worker {report.worker}: {report.jobs_done} job(s) done, {report.jobs_retried} to retry, "
                f"{report.jobs_failed} failed, {report.leases_lost} lease(s) lost, "
                f"{report.items_embedded} item(s) embedded, {summary['documents']} in {report.elapsed:.1f}s"
            )
        if report.jobs_failed or report.jobs_retried:
            raise typer.Exit(1)

    @command(app, "corpus")
    @with_global_options
    def corpus(
        model: Annotated[
            str | None,
            typer.Option(
                "--model", "-m", help="The model for recollections. Default: PYRAMID_MODEL, else extractive."
            ),
        ] = None,
    ) -> None:
        """Run the corpus step now: recollections of the documents waiting for it, BM25 compaction."""
        with open_pyramid() as kp:
            kp.corpus(model=model)
        err.print("Corpus step done.")
