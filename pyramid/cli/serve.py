"""``pyramid serve``: the HTTP API and the web page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import command, err, global_options, with_global_options

if TYPE_CHECKING:
    from ..api import Opening


def register(app: typer.Typer) -> None:
    @command(app, "serve")
    @with_global_options
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8765,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="PYRAMID_API_TOKEN",
                help="Every request needs 'Authorization: Bearer TOKEN' (a browser: /?token=TOKEN once). "
                "Required to listen on a non-loopback address.",
                show_default=False,
            ),
        ] = None,
        max_upload_mb: Annotated[
            float, typer.Option("--max-upload-mb", help="Largest file POST /api/ingest accepts.")
        ] = 50.0,
        upload_dir: Annotated[
            Path | None,
            typer.Option("--upload-dir", help="Where uploaded files are kept (default: DATA_DIR/uploads)."),
        ] = None,
        api_tokens: Annotated[
            bool,
            typer.Option(
                "--api-tokens",
                help="Every request needs an API token of the database (pyramid tokens create) or --token; "
                "on by itself once the database has API tokens.",
            ),
        ] = False,
    ) -> None:
        """Serve the JSON API (OpenAPI at /docs) and the web page at / (search, ask, documents, stats)."""
        from ..api import Pyramid
        from ..errors import ConfigError

        try:
            from ..serve import check_bind
            from ..serve import serve as run
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"pyramid serve needs {exc.name}: pip install 'knowledge-pyramid[serve]'"
            ) from exc

        check_bind(host, token, api_tokens)  # before the database starts: a refused address fails fast
        options = global_options()

        def open_pyramid() -> Opening:
            # A server encodes queries, one at a time and latency-bound: the encoder runs at the
            # event loop's priority (encoder_nice 0), unless PYRAMID_ENCODER_NICE says otherwise.
            # Niced on a loaded machine, a search waited seconds for its query vector.
            nice = {} if "PYRAMID_ENCODER_NICE" in os.environ else {"encoder_nice": 0}
            return Pyramid.aopen(
                data_dir=options.data_dir,
                dsn=options.dsn,
                embedding_model=options.embedding_model,
                collection=options.collection,
                **{**nice, **options.extra},
            )

        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        err.print(
            f"Serving on http://{shown}:{port}/ (API docs: /docs)" + (" · token required" if token else "")
        )
        run(
            open_pyramid,
            host=host,
            port=port,
            token=token,
            max_upload=int(max_upload_mb * 1024 * 1024),
            upload_dir=upload_dir,
            api_tokens=api_tokens,
        )
