"""``pyramid doctor``: can this model distill and answer, in which output mode, how fast."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOption, command, out, print_json


def register(app: typer.Typer) -> None:
    @command(app, "doctor")
    def doctor(
        model: Annotated[
            str | None,
            typer.Option(
                "--model", "-m", help="The model to check (default: PYRAMID_MODEL).", show_default=False
            ),
        ] = None,
        output_mode: Annotated[
            str | None,
            typer.Option(
                "--output-mode",
                help="Check only this output mode (tool, native, prompted); default: each in turn.",
                show_default=False,
            ),
        ] = None,
        request_timeout: Annotated[
            float | None,
            typer.Option("--request-timeout", help="Seconds per request (default 120).", show_default=False),
        ] = None,
        json_output: JsonOption = False,
    ) -> None:
        """Send one tiny request of each kind the pipeline needs (structured insight edits, a tool
        call, a cited answer) and say, per kind, whether it works, the server's message, the output
        mode that worked and the seconds it took, with a suggested request_timeout and concurrency.

        Exit code 0: ingest and ask can run with this model; 1: they cannot (see the failures)."""
        from ..config import load_settings
        from ..doctor import run_doctor
        from ..errors import ConfigError

        settings = load_settings(model=model, output_mode=output_mode, request_timeout=request_timeout)
        if settings.model is None:
            raise ConfigError("name a model: --model openai-chat:NAME (or set PYRAMID_MODEL)")
        report = run_doctor(settings, settings.model)
        if json_output:
            print_json(report.summary())
        else:
            for check in report.checks:
                verdict = "[green]works[/green]" if check.ok else "[red]fails[/red]"
                mode = f" ({check.mode} output)" if check.mode else ""
                out.print(f"{check.kind}: {verdict}{mode} in {check.seconds:.1f} s — {check.message}")
                for failed in check.tried:
                    out.print(f"  [dim]{failed}[/dim]")
            if not report.check("tool call").ok:
                out.print("Without tool calls, `ask` answers from a search of the question instead.")
            out.print(
                f"Suggested: request_timeout = {report.suggested_timeout:.0f}, "
                f"concurrency = {report.suggested_concurrency}"
                + (f", output_mode = {report.check('structured').mode}" if report.can_ingest else "")
            )
            out.print(
                f"ingest: {'can run' if report.can_ingest else 'cannot run'}; "
                f"ask: {'can run' if report.can_ask else 'cannot run'}"
            )
        if not report.ok:
            raise typer.Exit(1)
