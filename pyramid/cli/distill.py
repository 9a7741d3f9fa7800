"""``pyramid remember`` and ``pyramid stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .common import JsonOption, command, display_path, err, open_pyramid, out, print_json, with_global_options

if TYPE_CHECKING:
    from ..models import Stats, Usage

LEVELS = ("page", "insight", "concept", "abstract", "recollection")


def _usage_cells(usage: Usage) -> list[str]:
    return [f"{usage.requests:,}", f"{usage.input_tokens:,}", f"{usage.output_tokens:,}"]


def _encoder_line(encoder: dict[str, Any]) -> str:
    built, now = encoder["database"], encoder["this_run"]
    line = f"Encoder: {encoder['model']}, built with {built['backend']} {built['precision']}"
    if now != built:
        probe = encoder["probes"].get(f"{now['backend']}/{now['precision']}")
        line += f"; this run encodes with {now['backend']} {now['precision']}"
        if probe:
            line += f" (probe: mean cosine {probe['mean']:.4f} over {probe['items']} items)"
    return line + "."


def print_stats(stats: Stats, *, per_document: bool) -> None:
    levels = Table(title="Items per level", show_header=True, header_style="bold")
    for column in ("level", "items", "made by"):
        levels.add_column(column, justify="right" if column == "items" else "left")
    for level in LEVELS:
        made_by = ", ".join(f"{name} ({n})" for name, n in sorted(stats.distillers.get(level, {}).items()))
        count = f"{stats.items.get(level, 0):,}"
        if level == "recollection" and stats.stale:
            count += f" ({stats.stale} stale)"
        levels.add_row(level, count, made_by)
    out.print(levels)
    if stats.documents:
        out.print("Documents: " + ", ".join(f"{n} {status}" for status, n in sorted(stats.documents.items())))
    if stats.encoder:
        out.print(_encoder_line(stats.encoder))
    if not stats.steps:
        out.print("No LLM tokens spent yet (the extractive distiller needs none).")
        return
    steps = Table(title="LLM usage per step", show_header=True, header_style="bold")
    for column in ("step", "model", "requests", "input tokens", "output tokens", "cached calls"):
        steps.add_column(column, justify="left" if column in ("step", "model") else "right")
    for step in stats.steps:
        steps.add_row(step.step, step.model or "", *_usage_cells(step.usage), f"{step.cached:,}")
    total = stats.usage
    steps.add_row("[bold]total[/bold]", "", *_usage_cells(total), "")
    out.print(steps)
    if per_document and stats.per_document:
        docs = Table(title="LLM usage per document", show_header=True, header_style="bold")
        for column in ("document", "step", "requests", "input tokens", "output tokens"):
            docs.add_column(
                column, justify="left" if column in ("document", "step") else "right", overflow="fold"
            )
        for doc in stats.per_document:
            name = display_path(doc.source) + ("" if doc.document_id else " [dim](removed)[/dim]")
            if doc.failed:
                name += " [red](failed attempts)[/red]"
            for n, step in enumerate(doc.steps):
                docs.add_row(name if n == 0 else "", step.step, *_usage_cells(step.usage))
        out.print(docs)


def register(app: typer.Typer) -> None:
    @command(app, "remember")
    @with_global_options
    def remember(
        text: Annotated[str, typer.Argument(help="What to remember, in your own words.")],
        source: Annotated[
            list[str] | None,
            typer.Option(
                "--source",
                "-s",
                metavar="DOC",
                help="A document it is about (id, path or file name); repeatable.",
            ),
        ] = None,
        json_output: JsonOption = False,
    ) -> None:
        """Add a recollection of your own (optionally about documents: its audit trail)."""
        with open_pyramid(creates=True) as kp:
            item = kp.remember(text, source=source or None)
        if json_output:
            print_json(item.model_dump(mode="json"))
            return
        err.print(f"Remembered (recollection {item.id}).")

    @command(app, "stats")
    @with_global_options
    def stats(
        documents: Annotated[
            bool,
            typer.Option("--documents/--no-documents", help="Also show the token usage of every document."),
        ] = True,
        json_output: JsonOption = False,
    ) -> None:
        """Show item counts per level and the LLM tokens spent per step and per document."""
        with open_pyramid() as kp:
            result = kp.stats()
        if json_output:
            data = result.model_dump(mode="json")
            data["usage"] = result.usage.model_dump()
            print_json(data)
            return
        print_stats(result, per_document=documents)
