"""``pyramid search``: hybrid BM25 + vector search over the pyramid's levels."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.padding import Padding

from .common import (
    JsonOption,
    LevelOption,
    RerankOption,
    Stages,
    command,
    display_path,
    interactive,
    open_pyramid,
    out,
    print_json,
    rerank_choice,
    shorten,
    split_levels,
    with_global_options,
)

if TYPE_CHECKING:
    from ..models import Hit

TEXT_CHARS = 400


def _score(value: float | None, rank: int | None) -> str | None:
    if value is None:
        return None
    return f"{value:.4f}" + (f" (#{rank})" if rank is not None else "")


_OWN_LINE = re.compile(r"^\s*(\||[-*+] |\d+[.)] |#)")  # table rows, list items, headings


def _reflow(text: str) -> str:
    """Lines joined within a paragraph, except those markdown keeps on their own line."""
    lines: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            if lines and lines[-1]:
                lines.append("")
        elif lines and lines[-1] and not _OWN_LINE.match(line) and not _OWN_LINE.match(lines[-1]):
            lines[-1] = f"{lines[-1]} {line.strip()}"
        else:
            lines.append(line.strip())
    return "\n".join(lines).strip()


def print_hits(hits: list[Hit]) -> None:
    if not hits:
        out.print("No results.")
        return
    for hit in hits:
        where = shorten(display_path(hit.source), out.width - 4) if hit.source else "(cross-document)"
        if hit.document_title:
            where = f"{hit.document_title} · {where}"
        if hit.pages:
            where += (" p. " if len(hit.pages) == 1 else " pp. ") + ", ".join(str(p) for p in hit.pages)
        scores = [
            f"{name} {shown}"
            for name, shown in (
                ("fused", f"{hit.fused:.4f}"),
                ("bm25", _score(hit.bm25, hit.bm25_rank)),
                ("vector", _score(hit.vector, hit.vector_rank)),
                ("rerank", _score(hit.rerank, None)),
            )
            if shown is not None
        ]
        stale = " [red]stale[/red]" if hit.stale else ""
        out.print(
            f"[bold]{hit.rank}.[/bold] [cyan]{hit.level}[/cyan] {escape(where)}{stale} [dim]item {hit.id}[/dim]",
        )
        text = hit.text if len(hit.text) <= TEXT_CHARS else hit.text[:TEXT_CHARS].rstrip() + " …"
        # A page keeps its source's line breaks (a PDF's lines end mid-sentence: "A full charge" /
        # "takes three hours."): paragraphs stay, the lines within one are joined for Rich to wrap.
        text = _reflow(text)
        if hit.title:
            text = f"{hit.title}: {text}"
        # Wrapped by Rich at word boundaries with a hanging indent (soft wrap left the terminal to
        # break words: "rob" / "ot").
        out.print(Padding(escape(text), (0, 0, 0, 3)))
        out.print(f"   [dim]{' · '.join(scores)}[/dim]")


def register(app: typer.Typer) -> None:
    @command(app, "search")
    @with_global_options
    def search(
        query: Annotated[str, typer.Argument(help="What to look for (plain words; no query syntax).")],
        level: LevelOption = None,
        doc: Annotated[
            list[str] | None,
            typer.Option(
                "--doc",
                "-d",
                metavar="GLOB",
                help="Only documents whose source matches this glob (*.pdf, reports/*); repeatable.",
                show_default=False,
            ),
        ] = None,
        k: Annotated[
            int | None,
            typer.Option(
                "-k", "--top", metavar="N", help="How many results (default {search_k}).", show_default=False
            ),
        ] = None,
        # No -m here: -m is --model in ingest, sync and ask.
        mode: Annotated[
            str,
            typer.Option(
                "--mode", metavar="MODE", help="hybrid (default), bm25 or vector.", show_default=False
            ),
        ] = "hybrid",
        fusion: Annotated[
            str | None,
            typer.Option(
                "--fusion",
                metavar="FUSION",
                help="How the two legs are fused: weighted or rrf (default {fusion}).",
                show_default=False,
            ),
        ] = None,
        rerank: RerankOption = None,
        json_output: JsonOption = False,
    ) -> None:
        """Search every level (or --level) with BM25 + vectors fused per level, optionally reranked."""
        choice = rerank_choice(rerank)
        warm = mode != "bm25"  # the query is encoded: load the encoder while the database opens
        with (
            Stages(enabled=interactive() and not json_output) as stages,
            open_pyramid(stages=stages, warm_encoder=warm) as kp,
        ):
            hits = kp.search(
                query, levels=split_levels(level), k=k, mode=mode, rerank=choice, documents=doc, fusion=fusion
            )
        if json_output:
            print_json([hit.model_dump(mode="json") for hit in hits])
            return
        print_hits(hits)
