"""What every command shares: the global options, opening the pyramid, printing, JSON.

Light imports only: this module is imported when the CLI starts.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import sys
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer import _click as click  # typer vendors its own click

if TYPE_CHECKING:
    from ..api import Pyramid
    from ..runtime import ProgressEvent

# stdout carries results (tables, JSON); stderr carries progress, notices and errors.
out = Console(highlight=False, soft_wrap=False)
if not out.is_terminal:
    # Piped or redirected (cron logs, files): 80 columns would fold every path; go wider.
    out = Console(highlight=False, soft_wrap=False, width=int(os.environ.get("COLUMNS", "160")))
err = Console(stderr=True, highlight=False)

GLOBAL_HELP = "Global options"


class _Defaults(dict[str, str]):
    """``{name}`` in a help text becomes the default of the setting ``name``, so the help cannot drift
    from ``Settings`` (the fusion help once said "rrf (default)" while the default was weighted)."""

    def __missing__(self, name: str) -> str:
        from ..config import Settings

        field_info = Settings.model_fields[name]
        value = field_info.get_default(call_default_factory=True)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


class _PlainArgument(TyperArgument):
    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


def _tidy(params: list[click.Parameter]) -> list[click.Parameter]:
    """Plain metavars (``PATHS...``, ``--top K``) instead of Python type names (``<list[Path]>``,
    ``<bool>``) in help and usage lines."""
    for param in params:
        if getattr(param, "_tidied", False):
            continue
        param._tidied = True  # type: ignore[attr-defined]
        if isinstance(param, TyperArgument):
            name = (param.name or "value").upper()
            param.metavar = param.metavar or (name + ("..." if param.nargs != 1 else ""))
            # The metavar says it all; the type column would add `<list[Path]>`.
            param.__class__ = _PlainArgument
        elif getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif param.metavar is None:
            param.metavar = (param.name or "value").upper()
    return params


_LISTED = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s|^\s{2,}")


def _reflowed(help_text: str | None) -> str | None:
    """A docstring with each paragraph's lines joined, so Rich wraps it at the terminal's width
    instead of keeping the source's hard line breaks ("… every job this" / "worker took …"). A
    paragraph of list items or indented lines (an example) keeps its lines."""
    if not help_text:
        return help_text
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    return "\n\n".join(
        para if any(_LISTED.match(line) for line in para.splitlines()) else " ".join(para.split())
        for para in paragraphs
    )


def _one_line(help_text: str | None) -> str | None:
    """A docstring's first paragraph as one line: Rich's help keeps a docstring's hard line breaks,
    so the command list broke a long description mid-sentence ("… a tool" / "call, …")."""
    if not help_text:
        return None
    first = inspect.cleandoc(help_text).split("\n\n")[0]
    return " ".join(first.split())


class Command(TyperCommand):
    """Every command's class: tidy metavars; help defaults read from ``Settings`` when help is shown
    (importing the settings costs start-up time that a plain run should not pay)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.short_help = self.short_help or _one_line(self.help)
        self.help = _reflowed(self.help)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _tidy(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                metavar = param.metavar or ""
                pieces.append(metavar if param.required else f"[{metavar}]")
        return pieces

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.get_params(ctx):
            if isinstance(param, TyperOption | TyperArgument) and param.help and "{" in param.help:
                param.help = param.help.format_map(_Defaults())
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The root and ``db`` groups: tidy metavars like ``Command``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.short_help = self.short_help or _one_line(self.help)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _tidy(super().get_params(ctx))


def command(app: typer.Typer, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@command(app, "ls")``: register a command with the CLI's ``Command`` class."""
    return app.command(name, cls=Command)


def split_levels(values: list[str] | None) -> list[str] | None:
    """The one level parser: ``-l insight,concept`` and ``-l insight -l concept`` mean the same."""
    chosen = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return chosen or None


LevelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--level",
        "--levels",
        "-l",
        metavar="LEVEL",
        help="Levels to search (page, insight, concept, abstract, recollection): comma-separated or "
        "repeated.",
        show_default=False,
    ),
]


# What `--rerank` alone stands for: the configured reranker, or the default cross-encoder.
_CONFIGURED = "@configured"


def optional_values(args: list[str]) -> list[str]:
    """Typer has no option with an optional value, so `--rerank` without one (last, or followed by
    another option) gets the placeholder for "the configured reranker" before parsing."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--rerank" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            out.append(_CONFIGURED)
    return out


def rerank_choice(value: str | None) -> bool | str | None:
    """``--rerank`` as the library takes it: None (not given), True (alone), or the model named."""
    return None if value is None else (True if value == _CONFIGURED else value)


RerankOption = Annotated[
    str | None,
    typer.Option(
        "--rerank",
        metavar="[MODEL]",
        show_default=False,
        help="Rerank with a cross-encoder: --rerank alone uses the configured one (PYRAMID_RERANKER) or "
        "cross-encoder/ms-marco-MiniLM-L6-v2; --rerank MODEL names one: a local folder, or a name in the "
        "Hugging Face cache (or on the hub, when it can be reached).",
    ),
]


@dataclass
class GlobalOptions:
    data_dir: Path | None = None
    dsn: str | None = None
    embedding_model: str | None = None
    embedding_backend: str | None = None
    collection: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="PATH",
        envvar="PYRAMID_DATA_DIR",
        help="Where the embedded PostgreSQL keeps its data (default: the user data dir).",
        rich_help_panel=GLOBAL_HELP,
        show_default=False,
    ),
]
DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        metavar="URL",
        envvar="PYRAMID_DSN",
        help="Use this PostgreSQL (with pgvector) instead of the embedded one.",
        rich_help_panel=GLOBAL_HELP,
        show_default=False,
    ),
]
EmbeddingModelOption = Annotated[
    str | None,
    typer.Option(
        "--embedding-model",
        metavar="MODEL",
        envvar="PYRAMID_EMBEDDING_MODEL",
        help="sentence-transformers model name or path (default: the bundled all-MiniLM-L6-v2).",
        rich_help_panel=GLOBAL_HELP,
        show_default=False,
    ),
]
EmbeddingBackendOption = Annotated[
    str | None,
    typer.Option(
        "--embedding-backend",
        metavar="auto|torch|onnx",
        envvar="PYRAMID_EMBEDDING_BACKEND",
        help="Encoder: onnx (int8 ONNX Runtime, CPU), torch (sentence-transformers); auto (default): "
        "torch on CUDA, onnx elsewhere.",
        rich_help_panel=GLOBAL_HELP,
        show_default=False,
    ),
]
CollectionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--collection",
        metavar="NAME",
        envvar="PYRAMID_COLLECTION",
        help="The collection to work in (default: default). Repeat it, or separate names with commas, "
        "to read several together; ingest writes to the first.",
        rich_help_panel=GLOBAL_HELP,
        show_default=False,
    ),
]


def group_options(data_dir: Path | None, dsn: str | None, collection: list[str] | None = None) -> None:
    """The global options given to a command group (``pyramid jobs --dsn …``) before its subcommand."""
    options = global_options()
    options.data_dir = data_dir or options.data_dir
    options.dsn = dsn or options.dsn
    options.collection = collection_names(collection) or options.collection


def collection_names(values: list[str] | None) -> str | None:
    """--collection hr --collection legal, --collection hr,legal and PYRAMID_COLLECTION="hr legal"
    (click splits an environment variable of a repeatable option at spaces) all name the same two."""
    if not values:
        return None
    return ",".join(part.strip() for value in values for part in value.split(",") if part.strip()) or None


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


_options = GlobalOptions()


def global_options() -> GlobalOptions:
    """The global options of the command being run (one command per process, or per CliRunner call:
    the root callback resets them)."""
    return _options


def reset_global_options() -> GlobalOptions:
    global _options
    _options = GlobalOptions()
    return _options


def with_global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command the global options (``--data-dir``, ``--dsn``, ``--embedding-model``) so they
    work after the command name too: ``pyramid ls --dsn …`` as well as ``pyramid --dsn … ls``."""
    # Typer reads the signature we hand it; resolve the string annotations (PEP 563) first so the
    # Annotated[…, typer.Option(…)] metadata survives the wrapping.
    hints = typing.get_type_hints(fn, include_extras=True)
    signature = inspect.signature(fn)
    signature = signature.replace(
        parameters=[
            p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
        ]
    )
    extra = [
        inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, annotation=DataDirOption, default=None),
        inspect.Parameter("dsn", inspect.Parameter.KEYWORD_ONLY, annotation=DsnOption, default=None),
        inspect.Parameter(
            "embedding_model", inspect.Parameter.KEYWORD_ONLY, annotation=EmbeddingModelOption, default=None
        ),
        inspect.Parameter(
            "embedding_backend",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=EmbeddingBackendOption,
            default=None,
        ),
        inspect.Parameter(
            "collection", inspect.Parameter.KEYWORD_ONLY, annotation=CollectionOption, default=None
        ),
    ]

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        data_dir: Path | None = None,
        dsn: str | None = None,
        embedding_model: str | None = None,
        embedding_backend: str | None = None,
        collection: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        options = global_options()
        options.data_dir = data_dir or options.data_dir
        options.dsn = dsn or options.dsn
        options.embedding_model = embedding_model or options.embedding_model
        options.embedding_backend = embedding_backend or options.embedding_backend
        options.collection = collection_names(collection) or options.collection
        return fn(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    return wrapper


class Stages:
    """A spinner on stderr naming the stage a command is in ("Loading the encoder…"), on a terminal
    only (never in a pipe, under cron, or with --json): search, ask and mcp spend seconds starting
    (the database, the encoder) and printed nothing meanwhile."""

    def __init__(self, *, enabled: bool, first: str = "opening the pyramid") -> None:
        self.enabled = enabled
        self._first = first
        self._status: Any = None

    def __enter__(self) -> Stages:
        if self.enabled:
            self._status = err.status(_stage_text(self._first))
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "stage" and event.message:
            self.show(_stage_text(event.message))

    def show(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _stage_text(what: str) -> str:
    return f"{what[:1].upper()}{what[1:]}…"


@contextmanager
def open_pyramid(
    *,
    check_model: bool = True,
    quiet: bool = False,
    stages: Stages | None = None,
    warm_encoder: bool = False,
    creates: bool = False,
    **settings: Any,
) -> Iterator[Pyramid]:
    """Open the pyramid the global options name; notices (migrations) go to stderr, stages to the
    ``stages`` spinner. A collection that does not exist is an error, unless the command
    ``creates`` it (ingest, sync, remember, jobs add, worker)."""
    from ..api import Pyramid

    options = global_options()

    def notice(event: ProgressEvent) -> None:
        if event.kind == "message" and event.message and not quiet:
            err.print(f"[dim]{event.message}[/dim]")
        elif stages is not None:
            stages(event)

    kp = Pyramid.open(
        data_dir=options.data_dir,
        dsn=options.dsn,
        embedding_model=options.embedding_model,
        embedding_backend=options.embedding_backend,
        collection=options.collection,
        progress=notice,
        check_model=check_model,
        warm_encoder=warm_encoder,
        **{**options.extra, **settings},
    )
    try:
        if not creates:
            kp.require_collections()
        yield kp
    except KeyboardInterrupt:
        # No orderly close on Ctrl-C: it waited up to 10 s for the encoder thread and then printed
        # "Task was destroyed but it is pending!". The entry point exits at once instead; PostgreSQL
        # rolls back the open transactions and frees the writer lock when the connections drop.
        raise
    except BaseException:
        kp.close()
        raise
    else:
        kp.close()


def print_json(value: Any) -> None:
    """JSON on stdout, one document, UTF-8, stable key order."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def display_path(source: str) -> str:
    """A source shown relative to the current directory when it lies below it."""
    try:
        cwd = os.getcwd()
    except OSError:
        return source
    if source.startswith(cwd + os.sep):
        return source[len(cwd) + 1 :]
    return source


def shorten(text: str, width: int) -> str:
    """A path that fits ``width`` columns, cut from the left ("…/reports/q3.pdf"): Rich would fold
    a word longer than the line in the middle."""
    return text if len(text) <= width else "…" + text[-(max(width, 2) - 1) :]


def interactive() -> bool:
    return err.is_terminal and not os.environ.get("CI")
