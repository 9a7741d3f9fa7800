"""``pyramid overview``: what the collection holds (no model needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import JsonOption, command, err, open_pyramid, out, print_json, with_global_options

if TYPE_CHECKING:
    from ..models import Overview


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(size)


def print_overview(view: Overview) -> None:
    out.print(
        f"[bold]{len(view.documents)} documents[/bold], {view.pages:,} pages, {_size(view.bytes)}",
    )
    table = Table(show_header=True, header_style="bold")
    for name in ("format", "documents", "files", "pages", "size"):
        table.add_column(name, justify="left" if name == "format" else "right")
    for f in view.formats:
        table.add_row(escape(f.format), str(f.documents), str(f.files), f"{f.pages:,}", _size(f.bytes))
    out.print(table)
    out.print("[bold]Themes[/bold] (concepts central across documents):")
    for theme in view.themes:
        spans = f"{theme.documents} document{'s' if theme.documents != 1 else ''}"
        out.print(f"  {escape(theme.name)} [dim]({spans}: {escape(', '.join(theme.titles[:4]))})[/dim]")
    if view.recollections:
        counts = ", ".join(f"{n} {kind}" for kind, n in view.recollections.items())
        out.print(f"[bold]Recollections[/bold] ({counts}):")
        for r in view.says:
            out.print(f"  \\[recollection {r.id}] [cyan]{r.kind}[/cyan] {escape(r.text)}", soft_wrap=False)
    by = f" [dim](written by {escape(view.questions_by)})[/dim]" if view.questions_by else ""
    out.print(f"[bold]Questions[/bold] it can answer well{by}:")
    for question in view.questions:
        out.print(f"  {escape(question)}")


def register(app: typer.Typer) -> None:
    @command(app, "overview")
    @with_global_options
    def overview(
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="Have this PydanticAI model write the example questions (default: built from the "
                "themes, no model).",
                show_default=False,
            ),
        ] = None,
        json_output: JsonOption = False,
    ) -> None:
        """What the collection holds: documents by format and size, main themes, what the
        recollections say, and example questions (no model needed)."""
        with open_pyramid() as kp:
            view = kp.overview(model=model)
        for notice in view.notices:
            err.print(f"[yellow]{escape(notice)}[/yellow]", soft_wrap=True)
        if json_output:
            print_json(view.model_dump(mode="json"))
            return
        print_overview(view)
