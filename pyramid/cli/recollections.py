"""``pyramid recollections`` (list them with status, sources and history), ``pyramid recollections
verify`` (re-check learned ones against their sources) and the printing of one recollection's audit
trail (``pyramid show recollection:N``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..models import LEVELS
from .common import (
    Group,
    JsonOption,
    command,
    display_path,
    open_pyramid,
    out,
    print_json,
    shorten,
    with_global_options,
)

if TYPE_CHECKING:
    from ..models import RecollectionView, VerifyReport

STATUS_STYLE = {"valid": "green", "revised": "cyan", "stale": "yellow", "retired": "red"}

recollections_app = typer.Typer(
    help="Recollections of every kind (distilled, user, learned) with status, sources and history.",
    cls=Group,
    invoke_without_command=True,
)


def _pages(pages: list[int]) -> str:
    from ..search.evidence import format_pages

    shown = format_pages(pages)
    return f", {shown}" if shown else ""


def print_recollection(view: RecollectionView, *, full: bool = True) -> None:
    """One recollection: kind, status, text; with ``full`` its audit trail (items → pages → files),
    the question and model it was learned from, and its history."""
    style = STATUS_STYLE.get(view.status, "white")
    out.print(
        f"[bold]{escape(view.cite)}[/bold] [cyan]{view.kind}[/cyan] [{style}]{view.status}[/{style}]"
        + (f" [dim]{view.created_at:%Y-%m-%d %H:%M}[/dim]" if view.created_at else ""),
    )
    out.print("  " + escape(view.text if full else shorten(view.text, 240)), soft_wrap=not full)
    if view.question:
        out.print(
            f"  [dim]learned from:[/dim] {escape(view.question)} [dim]({escape(view.model or '')})[/dim]"
        )
    if not full:
        files = sorted({display_path(s.source) for s in view.sources if s.source})
        if files:
            out.print(f"  [dim]sources: {len(view.sources)} ({escape(', '.join(files))})[/dim]")
        return
    if view.sources:
        out.print("  [bold]sources[/bold] (item → pages → file):")
    for source in view.sources:
        if source.item_id is None and source.ref.startswith(tuple(f"{level} " for level in LEVELS)):
            # A cited item that is gone: its trail (level, id, file, pages, text) was kept in source_ref.
            out.print(f"    [red]gone[/red] {escape(shorten(source.ref, 200))}")
            continue
        if source.item_id is None and source.source is None:
            out.print(f"    [red]gone[/red] {escape(source.ref)}")
            continue
        what = f"{source.level} {source.item_id}" if source.item_id is not None else "document"
        where = (
            f"{display_path(source.source)}{_pages(source.pages)}" if source.source else "(cross-document)"
        )
        text = f": {escape(shorten(' '.join((source.text or '').split()), 160))}" if source.text else ""
        out.print(f"    {what} → {escape(where)}{text}")
    if view.history:
        out.print("  [bold]history[/bold] (oldest first):")
    for entry in view.history:
        said = f' "{escape(shorten(entry["text"], 160))}"' if entry.get("text") else ""
        verdict = f" {entry['verdict']}" if entry.get("verdict") else ""
        reason = f" — {escape(entry['reason'])}" if entry.get("reason") else ""
        asked = f" [dim](asked: {escape(entry['question'])})[/dim]" if entry.get("question") else ""
        out.print(f"    {entry.get('at', '')} {entry.get('by', '')}{verdict}{said}{reason}{asked}")


def print_verify(report: VerifyReport) -> None:
    for verdict in report.verdicts:
        style = STATUS_STYLE.get(verdict.status, "white")
        out.print(
            f"[bold]\\[recollection {verdict.id}][/bold] [{style}]{verdict.status}[/{style}]: "
            + escape(verdict.reason),
            soft_wrap=True,
        )
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("valid", "revised", "retired"))
    how = f"with {report.model}" if report.model else "without a model (cited items unchanged?)"
    out.print(f"Checked {report.checked} learned recollection(s) {how}: {counts}.")


@recollections_app.callback()
@with_global_options
def recollections(
    ctx: typer.Context,
    stale: Annotated[bool, typer.Option("--stale", help="Only stale recollections.")] = False,
    learned: Annotated[bool, typer.Option("--learned", help="Only those learned from answers.")] = False,
    user: Annotated[bool, typer.Option("--user", help="Only your own (pyramid remember).")] = False,
    distilled: Annotated[bool, typer.Option("--distilled", help="Only those the distillers made.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Retired recollections too.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List recollections with their kind, status (valid, stale, revised, retired), sources and
    history; `pyramid recollections verify` re-checks the learned ones."""
    if ctx.invoked_subcommand is not None:
        return
    kinds = [k for k, on in (("learned", learned), ("user", user), ("distilled", distilled)) if on]
    with open_pyramid() as kp:
        views = kp.recollections(kind=kinds or None, stale=stale, all=all_)
    if json_output:
        print_json([v.model_dump(mode="json") for v in views])
        return
    if not views:
        out.print("No recollections match.")
    for view in views:
        print_recollection(view, full=False)


@command(recollections_app, "verify")
@with_global_options
def verify(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A PydanticAI model that judges whether the sources still support each one; without "
            "one, the cited items must be stored with the same text.",
            show_default=False,
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Check every live learned recollection, not only stale ones.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Re-check stale learned recollections against their sources: valid, revised or retired."""
    with open_pyramid() as kp:
        report = kp.verify_recollections(model=model, all=all_)
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    print_verify(report)


def show_recollection(ref: str, *, json_output: bool) -> None:
    from ..errors import ConfigError

    if not ref.strip().isdigit():
        raise ConfigError(f"recollection:{ref} names no recollection: write recollection:N (its id)")
    with open_pyramid() as kp:
        view = kp.recollection(int(ref))
    if json_output:
        print_json(view.model_dump(mode="json"))
        return
    print_recollection(view)


def register(app: typer.Typer) -> None:
    app.add_typer(recollections_app, name="recollections")
