"""``pyramid ls`` and ``pyramid show``: what is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from .common import (
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
    from ..models import DocumentInfo, DocumentView, ItemView

STATUS_STYLE = {
    "ready": "green",
    "failed": "red",
    "partial": "magenta",
    "pending": "yellow",
    "converted": "cyan",
    "distilled": "blue",
}


def common_root(sources: list[str]) -> tuple[str, dict[str, str]]:
    """The folder every source lies below ("" when none is shared), and each source relative to it."""
    import os

    try:
        root = os.path.commonpath([os.path.dirname(source) for source in sources]) if sources else ""
    except ValueError:  # relative and absolute paths mixed
        root = ""
    if root == os.sep:
        root = ""
    if not root:
        return "", {source: display_path(source) for source in sources}
    return root, {source: source[len(root) + 1 :] for source in sources}


def _pages(pages: list[int]) -> str:
    if not pages:
        return ""
    return ("p. " if len(pages) == 1 else "pp. ") + ", ".join(str(p) for p in pages)


def _print_items(title: str, items: list[ItemView], *, numbered: bool = True) -> None:
    if not items:
        return
    out.rule(f"[bold]{title}[/bold] ({len(items)})")
    for item in items:
        head = f"{item.ordinal}. " if numbered else ""
        name = f"[bold]{escape(item.title)}[/bold]: " if item.title else ""
        tags = []
        if item.pages:
            tags.append(_pages(item.pages))
        if item.stale:
            tags.append("[red]stale[/red]")
        if item.distiller:
            tags.append(item.distiller)
        suffix = f" [dim]({'; '.join(tags)})[/dim]" if tags else ""
        out.print(f"{head}{name}{escape(item.text)}{suffix}")


def print_document(view: DocumentView, *, pages: bool) -> None:
    doc = view.document
    path = escape(shorten(display_path(doc.source), out.width - 6))  # inside the panel's border
    status = f"[{STATUS_STYLE.get(doc.status, 'white')}]{doc.status}[/]"
    header = (
        f"[bold]{escape(doc.title or '') or path}[/bold]\n"
        f"{path} · {doc.format} · {doc.pages} page(s) · {status}"
        + (f" · distiller: {doc.distiller}" if doc.distiller else "")
        + (f"\n[red]error: {doc.error}[/red]" if doc.error else "")
    )
    out.print(Panel(header, expand=False))
    _print_items("Abstract", view.abstract, numbered=False)
    _print_items("Concepts", view.concepts)
    _print_items("Insights", view.insights)
    _print_items("Recollections", view.recollections)
    if pages:
        for page in view.pages:
            out.rule(f"[bold]Page {page.ordinal}[/bold]")
            out.print(Markdown(page.text))


def _print_feed(name: str, docs: list[DocumentInfo]) -> None:
    """The documents one feed file became, one per item, with the id that shows each."""
    path = escape(shorten(display_path(docs[0].path), out.width - 40))
    out.print(f"{path} holds {len(docs)} documents, one per feed item; show one with `pyramid show ID`:")
    table = Table(show_header=True, header_style="bold")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("title", ratio=1)
    table.add_column("pages", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for doc in docs:
        status = f"[{STATUS_STYLE.get(doc.status, 'white')}]{doc.status}[/]"
        table.add_row(str(doc.id), escape(doc.title or doc.source), str(doc.pages), status)
    out.print(table)


def _status(value: str | None) -> str | None:
    """``--status bogus`` is a usage error naming the statuses, not an empty list."""
    from typing import get_args

    from ..models import DocumentStatus

    valid = get_args(DocumentStatus)
    if value is not None and value not in valid:
        raise typer.BadParameter(f"{value!r} is not a status; use one of: {', '.join(valid)}")
    return value


def register(app: typer.Typer) -> None:
    @command(app, "ls")
    @with_global_options
    def ls(
        status: Annotated[
            str | None,
            typer.Option(
                "--status",
                metavar="STATUS",
                callback=_status,
                help="Only documents with this status (pending, converted, distilled, ready, failed).",
            ),
        ] = None,
        json_output: JsonOption = False,
    ) -> None:
        """List stored documents: source, title, format, pages, status, error, ingested-at."""
        with open_pyramid() as kp:
            docs = kp.documents(status=status)
        if json_output:
            print_json([doc.model_dump(mode="json") for doc in docs])
            return
        if not docs:
            out.print("No documents yet. Add some with `pyramid ingest PATH`.")
            return
        table = Table(show_header=True, header_style="bold", show_lines=False)
        # Sources relative to the folder they share (full paths with --json); cells wrap at words,
        # and a word too long for its column is cut with "…", never folded mid-word. Narrow
        # terminals drop the columns a reader needs least, so the others keep room.
        root, shown = common_root([doc.source for doc in docs])
        if root:
            out.print(f"[dim]Sources below {escape(shorten(display_path(root) + '/', out.width - 14))}[/dim]")
        width = out.width
        columns = ["id", "source", "title"]
        columns += ["format"] if width >= 100 else []
        columns += ["pages", "status"]
        columns += ["distiller"] if width >= 100 else []
        columns += ["ingested"] if width >= 80 else []
        for column in columns:
            table.add_column(
                column,
                overflow="ellipsis",
                justify="right" if column in ("id", "pages") else "left",
                no_wrap=column not in ("source", "title", "status"),
                ratio=1 if column in ("source", "title") else None,
            )
        for doc in docs:
            status_text = f"[{STATUS_STYLE.get(doc.status, 'white')}]{doc.status}[/]"
            if doc.error:
                status_text += f"\n[red]{escape(doc.error)}[/red]"
            cells = {
                "id": str(doc.id),
                "source": escape(shown[doc.source]),
                "title": escape(doc.title or ""),
                "format": doc.format,
                "pages": str(doc.pages),
                "status": status_text,
                "distiller": doc.distiller or "",
                "ingested": doc.ingested_at.strftime("%Y-%m-%d %H:%M"),
            }
            table.add_row(*(cells[column] for column in columns))
        out.print(table)
        counts: dict[str, int] = {}
        for doc in docs:
            counts[doc.status] = counts.get(doc.status, 0) + 1
        out.print(f"{len(docs)} document(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))

    @command(app, "show")
    @with_global_options
    def show(
        doc: Annotated[
            str,
            typer.Argument(help="Document id, source path, or a unique file name; or recollection:N."),
        ],
        pages: Annotated[bool, typer.Option("--pages/--no-pages", help="Print the pages too.")] = True,
        json_output: JsonOption = False,
    ) -> None:
        """Show one document: its pyramid top-down (abstract, concepts, insights), then page by page.
        A feed file (``news.rss``) lists the documents its items became. ``recollection:N`` shows one
        recollection with its audit trail: items, pages, files, history."""
        if doc.startswith("recollection:"):
            from .recollections import show_recollection

            show_recollection(doc.removeprefix("recollection:"), json_output=json_output)
            return
        with open_pyramid() as kp:
            docs = kp.documents(named=doc)
            view = kp.document(docs[0].id, pages=pages) if len(docs) == 1 else None
        if view is None:
            if json_output:
                print_json({"file": docs[0].path, "documents": [d.model_dump(mode="json") for d in docs]})
                return
            _print_feed(doc, docs)
            return
        if json_output:
            print_json(view.model_dump(mode="json"))
            return
        print_document(view, pages=pages)
