"""``pyramid ask`` (a cited answer, or the best evidence without an LLM) and ``pyramid mcp`` (the
pyramid's tools for MCP clients)."""

from __future__ import annotations

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
    err,
    interactive,
    open_pyramid,
    out,
    print_json,
    rerank_choice,
    split_levels,
    with_global_options,
)

if TYPE_CHECKING:
    from ..ask import Answer, AskEvent
    from ..models import Learned, Usage

QUOTE_CHARS = 240


def _usage(usage: Usage) -> str:
    return (
        f"{usage.requests} request{'s' if usage.requests != 1 else ''}, "
        f"{usage.input_tokens:,} input tokens, {usage.output_tokens:,} output tokens"
    )


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS].rstrip() + " …"


def print_answer(answer: Answer, *, streamed: bool = False) -> None:
    """The answer, its sources and usage; ``streamed``: the text is on the screen already, so only
    what follows it (and any citation that did not resolve, marked)."""
    if streamed and answer.answered:
        from ..search.citations import check

        out.print()
        problems = check(answer.text, answer.evidence).problems
        if problems:
            out.print(
                "[red]Not backed by the evidence: " + escape("; ".join(problems)) + "[/red]", soft_wrap=True
            )
    elif not answer.answered:
        out.print(escape(answer.text))
        for n, item in enumerate(answer.evidence, 1):
            out.print(
                f"[bold]{n}.[/bold] {escape(item.cite)} [cyan]{item.level}[/cyan] [dim]item {item.id}[/dim]"
            )
            out.print(Padding(escape(_quote(item.text)), (0, 0, 0, 3)))
        out.print(f"[dim]Usage: no LLM, 0 tokens · {answer.elapsed:.1f} s[/dim]")
        return
    else:
        out.print(escape(answer.text))
    for notice in answer.notices:
        err.print(f"[yellow]{escape(notice)}[/yellow]", soft_wrap=True)
    if answer.partial:
        out.print(
            f"[yellow]Partial: {escape(answer.stopped or 'the research stopped early')}[/yellow]",
        )
    if answer.rejected_citations:
        out.print(
            "[yellow]Removed citations not in the evidence: "
            + escape(" ".join(answer.rejected_citations))
            + "[/yellow]",
        )
    if answer.citations:
        out.rule("[bold]Sources[/bold]")
        for citation in answer.citations:
            out.print(
                f"{escape(citation.cite)} [cyan]{citation.level}[/cyan] [dim]item {citation.item_id}[/dim]: "
                + escape(_quote(citation.quote)),
            )
    out.print(
        f"[dim]Usage: {_usage(answer.usage)} (answer step: {_usage(answer.answer_usage)}) · "
        f"{answer.elapsed:.1f} s · {escape(answer.model or '')}[/dim]",
    )


def print_learned(learned: Learned) -> None:
    if learned.action == "none":
        out.print(f"[dim]Nothing learned: {escape(learned.reason or '')}[/dim]", soft_wrap=True)
        return
    what = "Learned" if learned.action == "added" else "Revised"
    out.print(
        f"[green]{what} [recollection {learned.recollection}][/green] from items "
        f"{', '.join(map(str, learned.sources))}: " + escape(learned.text or ""),
        soft_wrap=True,
    )


class Streamer:
    """Research steps as one updating status line on stderr, then the answer text on stdout as the
    model writes it (``on_event`` of ``Pyramid.ask``; runs on the library's thread)."""

    def __init__(self, stages: Stages) -> None:
        self.status = stages  # the start-up spinner goes on as the research status line
        self.wrote = False

    def __enter__(self) -> Streamer:
        self.status.show("Researching…")
        return self

    def __exit__(self, *exc: object) -> None:
        self.status.stop()

    def __call__(self, event: AskEvent) -> None:
        if event.kind == "tool_call":
            what = event.args.get("query") or event.args.get("text") or event.args.get("item_id") or ""
            self.status.show(f"{event.tool} {escape(str(what))[:70]}")
        elif event.kind == "text" and event.text:
            if not self.wrote:
                self.status.stop()
                self.wrote = True
            out.file.write(event.text)
            out.file.flush()
        elif event.kind == "reset" and self.wrote:
            # The text shown is dropped: a retry writes it again, or the final answer replaces it.
            out.file.write("\n")
            if event.summary:
                err.print(f"[yellow]The answer above is not used: {escape(event.summary)}[/yellow]")
            else:
                err.print("[yellow]A citation did not resolve; the answer is written again:[/yellow]")
            self.wrote = False


def register(app: typer.Typer) -> None:
    @command(app, "ask")
    @with_global_options
    def ask(
        question: Annotated[str, typer.Argument(help="The question, in plain words.")],
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help="PydanticAI model string (openai:gpt-4.1-mini, anthropic:…, ollama:…); default: PYRAMID_MODEL. "
                "Without one, ask prints the best evidence instead of an answer.",
                show_default=False,
            ),
        ] = None,
        levels: LevelOption = None,
        max_requests: Annotated[
            int | None,
            typer.Option(
                "--max-requests",
                metavar="N",
                help="Model requests this question may use (default {ask_request_limit}).",
                show_default=False,
            ),
        ] = None,
        max_tokens: Annotated[
            int | None,
            typer.Option(
                "--max-tokens",
                metavar="N",
                help="Tokens this question may use (default {ask_token_limit}).",
                show_default=False,
            ),
        ] = None,
        stream: Annotated[
            bool,
            typer.Option(
                "--stream/--no-stream",
                help="On a terminal, show the research steps and write the answer as it comes (default).",
            ),
        ] = True,
        learn: Annotated[
            bool | None,
            typer.Option(
                "--learn/--no-learn",
                help="Store the answer's cited finding as a learned recollection (default: setting ask_learn).",
                show_default=False,
            ),
        ] = None,
        rerank: RerankOption = None,
        output_mode: Annotated[
            str | None,
            typer.Option(
                "--output-mode",
                help="auto (default) or tool: the search agent walks the pyramid with tools (auto and tool "
                "fall back to retrieve-then-answer when the model makes no tool call or refuses tools); "
                "native or prompted: no tools, the answer is written from a search for the question.",
                show_default=False,
            ),
        ] = None,
        json_output: JsonOption = False,
    ) -> None:
        r"""Answer a question from the pyramid, with citations \[file, p. N] and the tokens it used."""
        live = stream and not json_output and out.is_terminal and interactive()
        chosen, reranker = split_levels(levels), rerank_choice(rerank)
        with (
            Stages(enabled=interactive() and not json_output) as stages,
            open_pyramid(
                ask_request_limit=max_requests,
                ask_token_limit=max_tokens,
                output_mode=output_mode,
                stages=stages,
                warm_encoder=True,  # every question is encoded: load the encoder while the database opens
            ) as kp,
        ):
            if not live:
                answer = kp.ask(question, model=model, levels=chosen, rerank=reranker, learn=learn)
            else:
                with Streamer(stages) as streamer:
                    answer = kp.ask(
                        question, model=model, levels=chosen, rerank=reranker, on_event=streamer, learn=learn
                    )
        if json_output:
            print_json(answer.model_dump(mode="json"))
            return
        print_answer(answer, streamed=live and streamer.wrote)
        if answer.learned is not None:
            print_learned(answer.learned)

    @command(app, "mcp")
    @with_global_options
    def mcp() -> None:
        """Serve the pyramid's read-only tools (search, expand) over MCP on stdio, for MCP clients."""
        # stdout is the protocol channel from here on: notices go to stderr, results only over MCP.
        with Stages(enabled=interactive()) as stages, open_pyramid(stages=stages) as kp:
            stages.stop()
            kp.serve_mcp()
