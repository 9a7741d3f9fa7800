"""``pyramid db …`` (the database itself) and ``pyramid reembed``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .common import (
    DataDirOption,
    DsnOption,
    EmbeddingModelOption,
    Group,
    JsonOption,
    command,
    err,
    global_options,
    interactive,
    open_pyramid,
    out,
    print_json,
    with_global_options,
)

if TYPE_CHECKING:
    from ..config import Settings

db_app = typer.Typer(
    help="The PostgreSQL database: URL, status, start, stop.", no_args_is_help=True, cls=Group
)


@db_app.callback()
def _db(
    data_dir: DataDirOption = None, dsn: DsnOption = None, embedding_model: EmbeddingModelOption = None
) -> None:
    """The PostgreSQL database: URL, status, start, stop."""
    # Global options are documented "before or after the command name": `pyramid db --data-dir X
    # status` as well as `pyramid --data-dir X db status` and `pyramid db status --data-dir X`.
    options = global_options()
    options.data_dir = data_dir or options.data_dir
    options.dsn = dsn or options.dsn
    options.embedding_model = embedding_model or options.embedding_model


def _settings() -> Settings:
    from ..config import load_settings

    options = global_options()
    return load_settings(data_dir=options.data_dir, dsn=options.dsn)


@command(db_app, "url")
@with_global_options
def url() -> None:
    """Print the PostgreSQL URL (starting the embedded server if needed): psql "$(pyramid db url)"."""
    with open_pyramid(check_model=False) as kp:
        out.print(kp.url, soft_wrap=True, markup=False)


@command(db_app, "status")
@with_global_options
def status(json_output: JsonOption = False) -> None:
    """Say whether the embedded server is running, and where its data lives."""
    from ..store.database import embedded_status

    settings = _settings()
    if settings.dsn:
        info = {"external": True, "dsn": settings.dsn}
    else:
        info = {"external": False, **embedded_status(settings.data_dir)}
    if json_output:
        print_json(info)
        return
    for key, value in info.items():
        out.print(f"{key}: {value}", markup=False)


@command(db_app, "start")
@with_global_options
def start() -> None:
    """Start the embedded server (other commands start it on demand too) and apply migrations."""
    with open_pyramid(check_model=False) as kp:
        err.print(f"Embedded PostgreSQL is running: {kp.url}")


@command(db_app, "stop")
@with_global_options
def stop() -> None:
    """Stop the embedded server of the data dir (it keeps running between commands otherwise)."""
    from ..store.database import stop_embedded

    settings = _settings()
    if settings.dsn:
        err.print("Nothing to stop: --dsn / PYRAMID_DSN names an external PostgreSQL.")
        return
    if stop_embedded(settings.data_dir):
        err.print("Stopped the embedded PostgreSQL.")
    else:
        err.print("The embedded PostgreSQL was not running.")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")

    @command(app, "reembed")
    @with_global_options
    def reembed(
        wait: Annotated[
            float | None,
            typer.Option(
                "--wait", metavar="SECONDS", help="Wait at most this long for a running ingest/sync."
            ),
        ] = None,
    ) -> None:
        """Re-embed every item with --embedding-model and make it the database's model."""
        from .ingest import IngestProgress

        with (
            IngestProgress(enabled=interactive(), description="Re-embedding", unit="items") as progress,
            open_pyramid(check_model=False) as kp,
        ):
            kp.set_progress(progress)
            count = kp.reembed(wait=wait)
            err.print(
                f"Re-embedded {count} item(s) with {kp.build.embedding_model!r} ({kp.build.embedding_dim} dims)."
            )
