"""The ``pyramid`` command. Thin: each command parses options and makes one library call.

Importing this module must stay cheap (no torch, sentence_transformers, pydantic_ai, markitdown or
psycopg): ``pyramid --help`` is instant. Commands import the library inside their bodies.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from typer.exceptions import TyperException

from ..errors import EXIT_OK, EXIT_USAGE, PyramidError
from . import ask as ask_commands
from . import collections as collection_commands
from . import db as db_commands
from . import distill as distill_commands
from . import docs as doc_commands
from . import doctor as doctor_commands
from . import ingest as ingest_commands
from . import overview as overview_commands
from . import recollections as recollection_commands
from . import search as search_commands
from . import serve as serve_commands
from . import worker as worker_commands
from .common import (
    CollectionOption,
    DataDirOption,
    DsnOption,
    EmbeddingBackendOption,
    EmbeddingModelOption,
    Group,
    collection_names,
    err,
    optional_values,
    reset_global_options,
)

app = typer.Typer(
    name="pyramid",
    help="Turn a folder of documents into a knowledge pyramid in PostgreSQL and search it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"knowledge-pyramid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    data_dir: DataDirOption = None,
    dsn: DsnOption = None,
    embedding_model: EmbeddingModelOption = None,
    embedding_backend: EmbeddingBackendOption = None,
    collection: CollectionOption = None,
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Turn a folder of documents into a knowledge pyramid in PostgreSQL and search it."""
    options = reset_global_options()
    options.data_dir, options.dsn, options.embedding_model = data_dir, dsn, embedding_model
    options.embedding_backend = embedding_backend
    options.collection = collection_names(collection)


ingest_commands.register(app)
doc_commands.register(app)
distill_commands.register(app)
db_commands.register(app)
search_commands.register(app)
ask_commands.register(app)
recollection_commands.register(app)
overview_commands.register(app)
serve_commands.register(app)
doctor_commands.register(app)
worker_commands.register(app)
collection_commands.register(app)


def _raise_errors() -> bool:
    return bool(os.environ.get("PYRAMID_RAISE_ERRORS"))


def _interrupted() -> NoReturn:
    """One line and exit 130 now: no interpreter shutdown, which would join the encoder's worker
    thread (seconds into a batch) and report the event loop's cancelled tasks."""
    err.print("Interrupted.")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and turns errors into ``Error: …`` and an exit code."""
    try:
        # Without standalone mode click hands back the code of a typer.Exit instead of exiting.
        args = optional_values(sys.argv[1:] if argv is None else argv)
        code = app(args=args, prog_name="pyramid", standalone_mode=False)
        if code == 130:  # typer turns a KeyboardInterrupt into a silent Exit(130)
            _interrupted()
        if isinstance(code, int):
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # click turns a Ctrl-C inside its own prompts into Abort
        _interrupted()
    except TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"Error: {exc.format_message()}", markup=False)
        sys.exit(EXIT_USAGE)
    except PyramidError as exc:
        err.print(f"[bold red]Error:[/bold red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if _raise_errors():
            raise
        err.print(
            f"[bold red]Error:[/bold red] unexpected {type(exc).__name__}: {exc}\n"
            "This is a bug; set PYRAMID_RAISE_ERRORS=1 to see the traceback.",
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(EXIT_OK)


__all__ = ["app", "main"]
