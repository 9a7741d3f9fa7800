"""``pyramid ingest``: files and folders into the pyramid, with a progress bar and a summary."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .common import (
    JsonOption,
    command,
    display_path,
    err,
    interactive,
    open_pyramid,
    out,
    print_json,
    with_global_options,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from rich.console import Console
    from rich.progress import Progress, Task, TaskID

    from ..models import IngestReport
    from ..runtime import ProgressEvent


STEP_AFTER = 2.0  # seconds a document's step runs before it gets a line of its own


class IngestProgress:
    """A Rich progress bar on stderr: files done / total, the current file, and an ETA, with a line
    per document in a long step (pages embedded, sentences encoded, insight windows read), so a
    90-page file does not sit at ``0/1 files`` for minutes. Without a terminal (cron, CI) or with
    --json it stays silent; the summary says what happened. ``reembed`` uses it for its items."""

    def __init__(
        self,
        *,
        enabled: bool,
        description: str = "Ingesting",
        unit: str = "files",
        console: Console | None = None,
        step_after: float = STEP_AFTER,
    ) -> None:
        self.enabled = enabled
        self.step_after = step_after
        self.description = description
        self.unit = unit
        self.console = console or err
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._current: list[str] = []
        self._steps: dict[str, TaskID] = {}

    def __enter__(self) -> IngestProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            self._progress = _progress_class(self.step_after)(
                SpinnerColumn(),
                TextColumn("{task.description}", style="bold"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn(
                    "{task.fields[current]}",
                    style="dim",
                    table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
                ),
                console=self.console,
                transient=False,
                refresh_per_second=8,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=None, current="", unit=self.unit)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "message" and event.message:
            self.console.print(f"[dim]{event.message}[/dim]")
            return
        if self._progress is None or self._task is None:
            return
        if event.kind == "start":
            self._progress.update(self._task, total=event.total, completed=0)
        elif event.kind == "file" and event.path:
            self._current.append(event.path)
            self._progress.update(self._task, current=_short(event.path))
        elif event.kind == "step" and event.path:
            self._step(event.path, event.message or "", event.files_done, event.total)
        elif event.kind == "result" and event.path:
            self._end_steps(lambda key: key == event.path)
        elif event.kind == "done":
            if event.path in self._current:
                self._current.remove(event.path)
            if event.path:
                self._end_steps(lambda key: key == event.path or key.startswith(f"{event.path}#"))
            current = _short(self._current[-1]) if self._current else ""
            self._progress.update(self._task, completed=event.files_done, current=current)
        elif event.kind == "stage" and event.message:
            self._end_steps(lambda _key: True)
            self._progress.update(self._task, description=event.message.capitalize(), current="")

    def _step(self, path: str, what: str, done: int, total: int) -> None:
        assert self._progress is not None
        name = path.rsplit("/", 1)[-1]
        label = f"{name if len(name) <= 28 else name[:27] + '…'}: {what}"
        task = self._steps.get(path)
        if task is None:
            self._steps[path] = self._progress.add_task(
                "", total=total or None, completed=done, current=label, unit=""
            )
        else:
            self._progress.update(task, total=total or None, completed=done, current=label)

    def _end_steps(self, ended: Callable[[str], bool]) -> None:
        assert self._progress is not None
        for key in [key for key in self._steps if ended(key)]:
            self._progress.remove_task(self._steps.pop(key))


def _progress_class(step_after: float) -> type[Progress]:
    """Rich's Progress, showing a document's step line only once it has taken ``STEP_AFTER``
    seconds: eight small files converting at once are not worth eight lines. (Built on first
    use: rich.progress stays out of the CLI's start-up.)"""
    from rich.progress import Progress

    class StepProgress(Progress):
        def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
            return super().make_tasks_table(
                [t for t in tasks if t.description or (t.elapsed or 0.0) >= step_after]
            )

    return StepProgress


def _short(path: str, width: int = 48) -> str:
    shown = display_path(path)
    return shown if len(shown) <= width else "…" + shown[-(width - 1) :]


def print_report(report: IngestReport, *, title: str = "Ingest") -> None:
    counts = report.counts()
    table = Table(title=f"{title} summary", show_header=True, header_style="bold")
    # "distilled" (pages stored earlier by --no-distill) only when there are some.
    shown = [
        k for k in ("added", "updated", "distilled", "unchanged", "removed") if k != "distilled" or counts[k]
    ]
    for key in (*shown, "failed"):
        table.add_column(key, justify="right")
    table.add_column("pages", justify="right")
    table.add_column("time", justify="right")
    pages = sum(r.pages for r in report.results if r.outcome in ("added", "updated"))
    table.add_row(
        *(str(counts[k]) for k in shown),
        f"[red]{counts['failed']}[/red]" if counts["failed"] else "0",
        str(pages),
        f"{report.elapsed:.1f}s",
    )
    out.print(table)
    if report.distiller:
        out.print(f"Distiller: {report.distiller}")
    if report.recollections:
        verdicts = ", ".join(f"{n} {status}" for status, n in report.recollections.items())
        out.print(f"Stale learned recollections checked: {verdicts} (see `pyramid recollections --all`)")
    if report.usage.requests or report.usage.total_tokens:
        what = "Estimated LLM usage" if report.dry_run else "LLM usage"
        price = "" if report.price is None else f", about ${report.price:,.4f}"
        out.print(
            f"{what}: {report.usage.requests:,} requests, {report.usage.input_tokens:,} input tokens, "
            f"{report.usage.output_tokens:,} output tokens{price}"
        )
        if report.price is None and report.distiller not in (None, "extractive"):
            out.print(f"[dim]No price is known for {report.distiller!r} (genai-prices).[/dim]")
    if report.failed:
        failures = Table(title="Failed", show_header=True, header_style="bold red")
        failures.add_column("file")
        failures.add_column("reason")
        for result in report.failed:
            failures.add_row(display_path(result.source), result.reason or "")
        out.print(failures)
    if report.partial:
        partial = Table(
            title="Partial (stored with what worked; the next run retries)", header_style="bold yellow"
        )
        partial.add_column("file")
        partial.add_column("what failed")
        for result in report.partial:
            partial.add_row(display_path(result.source), result.reason or "")
        out.print(partial)
    if report.dry_run:
        out.print("[yellow]Dry run: nothing was written.[/yellow]")


# Strings, not Paths: a Path turns "https://x" into "https:/x" before discovery can name it a URL.
PathsArgument = Annotated[list[str], typer.Argument(help="Files and folders (folders recursively).")]
IncludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--include", "-i", metavar="GLOB", help="Only files matching this glob (repeatable), e.g. '*.pdf'."
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        "-x",
        metavar="GLOB",
        help="Skip files matching this glob (repeatable), e.g. 'drafts/**'.",
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Re-ingest files even when unchanged.")]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="If another ingest/sync holds the database, wait at most this many seconds, then exit 75 "
        "(default: wait until it finishes).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Distill with this PydanticAI model (openai:gpt-4.1-mini, anthropic:…, ollama:…); "
        "'extractive' for no LLM. Default: PYRAMID_MODEL, else extractive.",
        show_default=False,
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        "-c",
        metavar="N",
        min=1,
        max=512,
        help="Documents distilled at once (default {concurrency}).",
        show_default=False,
    ),
]
OutputModeOption = Annotated[
    str | None,
    typer.Option(
        "--output-mode",
        help="How structured output is asked of the model: auto (default: JSON schema for "
        "OpenAI-compatible Chat Completions servers, tools elsewhere; falls back once when the model "
        "rejects it), tool, native (JSON schema), prompted (schema in the prompt).",
        show_default=False,
    ),
]


DistillOption = Annotated[
    bool,
    typer.Option(
        "--distill/--no-distill",
        help="--no-distill stores pages only (searchable at once); a later run without it distills them.",
    ),
]

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        min=1,
        max=64,
        help="Queue the files and ingest them with N local worker processes (see `pyramid worker`).",
        show_default=False,
    ),
]


@dataclass
class IngestFlags:
    """The options ``ingest`` and ``sync`` share, each written once: ``_with_ingest_flags`` makes
    these fields (in this order, after the command's own parameters) the command's options."""

    include: IncludeOption = None
    exclude: ExcludeOption = None
    dry_run: DryRunOption = False
    force: ForceOption = False
    wait: WaitOption = None
    model: ModelOption = None
    concurrency: ConcurrencyOption = None
    output_mode: OutputModeOption = None
    distill: DistillOption = True
    json_output: JsonOption = False


def _with_ingest_flags(fn: Callable[..., None]) -> Callable[..., None]:
    """Give a command the shared ingest options; it receives them as one ``flags: IngestFlags``."""
    hints = typing.get_type_hints(fn, include_extras=True)
    own = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(fn).parameters.values()
        if p.name != "flags"
    ]
    options = typing.get_type_hints(IngestFlags, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=options[f.name], default=f.default
        )
        for f in dataclasses.fields(IngestFlags)
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        flags = IngestFlags(**{p.name: kwargs.pop(p.name) for p in shared if p.name in kwargs})
        fn(*args, flags=flags, **kwargs)

    parameters = [*own, *shared]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _run(
    title: str, paths: list[str], flags: IngestFlags, *, prune: bool, workers: int | None = None
) -> None:
    """``kp.ingest`` (with ``prune``: what ``sync`` is), a progress bar, and the summary."""
    started = time.perf_counter()
    with (
        IngestProgress(enabled=interactive() and not flags.json_output) as progress,
        open_pyramid(output_mode=flags.output_mode, creates=True) as kp,
    ):
        kp.set_progress(progress)
        report = kp.ingest(
            paths,
            prune=prune,
            include=flags.include or (),
            exclude=flags.exclude or (),
            dry_run=flags.dry_run,
            force=flags.force,
            wait=flags.wait,
            model=flags.model,
            concurrency=flags.concurrency,
            distill=flags.distill,
            workers=workers,
        )
    report.elapsed = time.perf_counter() - started
    if flags.json_output:
        print_json(report.summary())
    else:
        print_report(report, title=title)
    if not report.ok:
        raise typer.Exit(1)


PruneOption = Annotated[
    bool,
    typer.Option("--prune/--no-prune", help="Remove documents whose files no longer exist below PATHS."),
]


def register(app: typer.Typer) -> None:
    @command(app, "ingest")
    @with_global_options
    @_with_ingest_flags
    def ingest(paths: PathsArgument, workers: WorkersOption = None, *, flags: IngestFlags) -> None:
        """Ingest files and folders: convert to pages, embed, distill into the pyramid, store.

        Distilling makes insights, concepts, an abstract and recollections.

        Unchanged files (same sha256) are skipped without writing; changed files are replaced
        atomically. --dry-run writes nothing and estimates the LLM tokens (and price) first. Exit
        code 0: every file stored; 1: some files failed (the others are stored); 2: usage or
        configuration error; 75: the database is busy (see --wait).
        """
        _run("Ingest", paths, flags, prune=False, workers=workers)

    @command(app, "sync")
    @with_global_options
    @_with_ingest_flags
    def sync(
        paths: PathsArgument, prune: PruneOption = True, workers: WorkersOption = None, *, flags: IngestFlags
    ) -> None:
        """Make the pyramid match folders (for cron): ingest new and changed files, remove deleted ones.

        Only documents whose file is gone from a root that exists now are removed: a missing root
        (e.g. an unmounted share) removes nothing. Exit codes as for ingest.
        """
        _run("Sync", paths, flags, prune=prune, workers=workers)
