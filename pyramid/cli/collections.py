"""``pyramid collections`` (and ``collections rm``), ``pyramid grant``, ``pyramid revoke``, ``pyramid
tokens`` (``create``, ``revoke``): the corpora of one database and who may read or write them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from .common import (
    CollectionOption,
    DataDirOption,
    DsnOption,
    Group,
    JsonOption,
    command,
    err,
    global_options,
    group_options,
    open_pyramid,
    out,
    print_json,
    with_global_options,
)

collections_app = typer.Typer(
    help="The collections of this database with their documents, items and access; `rm` removes one.",
    cls=Group,
    invoke_without_command=True,
)


@collections_app.callback()
def _collections(
    ctx: typer.Context,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    dsn: DsnOption = None,
    collection: CollectionOption = None,
) -> None:
    """The collections of this database with their documents, items and access; `rm` removes one."""
    group_options(data_dir, dsn, collection)
    if ctx.invoked_subcommand is not None:
        return
    with open_pyramid(check_model=False, creates=True) as kp:
        rows = kp.list_collections()
    if json_output:
        print_json([row.model_dump(mode="json") for row in rows])
        return
    table = Table(title="Collections", header_style="bold")
    for column in ("name", "documents", "items", "readers", "writers"):
        table.add_column(
            column, overflow="fold", justify="right" if column in ("documents", "items") else "left"
        )
    for row in rows:
        table.add_row(
            row.name,
            f"{row.documents:,}",
            f"{row.items:,}",
            ", ".join(g.role for g in row.grants if g.access == "read"),
            ", ".join(g.role for g in row.grants if g.access == "write"),
        )
    out.print(table)


@command(collections_app, "rm")
@with_global_options
def rm(
    name: Annotated[str, typer.Argument(help="The collection to remove, with everything in it.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove a collection: its documents, items, statistics, queue and access roles."""
    with open_pyramid(check_model=False, creates=True) as kp:
        found = next((c for c in kp.list_collections() if c.name == name), None)
        if found is not None and not yes:
            if not typer.confirm(
                f"Remove the collection {name!r} with {found.documents:,} documents and {found.items:,} items?",
                err=True,
            ):
                raise ConfigError("nothing removed (pass --yes to remove without asking)")
        removed = kp.remove_collection(name)
    if json_output:
        print_json(removed.model_dump(mode="json"))
        return
    err.print(
        f"Removed the collection {removed.name!r}: {removed.documents:,} documents, {removed.items:,} items."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(collections_app, name="collections")
    app.add_typer(tokens_app, name="tokens")

    @command(app, "grant")
    @with_global_options
    def grant(
        role: Annotated[
            str, typer.Argument(help="The PostgreSQL role (created, LOGIN without a password, if missing).")
        ],
        target: Annotated[str, typer.Argument(metavar="COLLECTION", help="The collection it may use.")],
        read: Annotated[bool, typer.Option("--read", help="Read only (the default).")] = False,
        write: Annotated[
            bool, typer.Option("--write", help="Read and write (ingest, sync, remember).")
        ] = False,
        json_output: JsonOption = False,
    ) -> None:
        """Let a PostgreSQL role read (or write) a collection. Enforced by row-level security: any
        connection as that role (psql, --dsn with that user, SQL functions) sees and changes only
        the rows of its collections."""
        if read and write:
            raise ConfigError("--read and --write: choose one")
        with open_pyramid(check_model=False, creates=True) as kp:
            given = kp.grant(role, target, write=write)
        if json_output:
            print_json({"collection": target, **given.model_dump(mode="json")})
            return
        err.print(f"{given.role} may now {given.access} the collection {target!r}.")

    @command(app, "revoke")
    @with_global_options
    def revoke(
        role: Annotated[str, typer.Argument(help="The PostgreSQL role.")],
        target: Annotated[str, typer.Argument(metavar="COLLECTION", help="The collection.")],
        json_output: JsonOption = False,
    ) -> None:
        """Take a role's access to a collection away (the role itself stays)."""
        with open_pyramid(check_model=False, creates=True) as kp:
            had = kp.revoke(role, target)
        if json_output:
            print_json({"role": role, "collection": target, "revoked": had})
            return
        err.print(
            f"{role} may no longer use the collection {target!r}."
            if had
            else f"{role} had no access to the collection {target!r}."
        )


tokens_app = typer.Typer(
    help="API tokens of `pyramid serve`, each a PostgreSQL role with access to some collections.",
    cls=Group,
    invoke_without_command=True,
)


@tokens_app.callback()
def _tokens(
    ctx: typer.Context,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    dsn: DsnOption = None,
) -> None:
    """API tokens of `pyramid serve`, each a PostgreSQL role with access to some collections."""
    group_options(data_dir, dsn)
    if ctx.invoked_subcommand is not None:
        return
    with open_pyramid(check_model=False, creates=True) as kp:
        rows = kp.tokens()
    if json_output:
        print_json([row.model_dump(mode="json") for row in rows])
        return
    table = Table(title="API tokens", header_style="bold")
    for column in ("id", "name", "collections", "access", "role", "last used"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            row.name,
            ", ".join(row.collections),
            "write" if row.write else "read",
            row.role,
            row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never",
        )
    out.print(table)


@command(tokens_app, "create")
@with_global_options
def create_token(
    name: Annotated[
        str, typer.Option("--name", help="What the token is for (shown in `pyramid tokens`).")
    ] = "",
    write: Annotated[
        bool, typer.Option("--write", help="Its requests may also ingest into the first collection.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Make an API token for the collections given with --collection (read; --write: also ingest
    into the first). The token is printed once; only its hash is kept."""
    options = global_options()
    if not options.collection:
        raise ConfigError("name the token's collections: pyramid tokens create --collection NAME")
    with open_pyramid(check_model=False) as kp:
        made, token = kp.create_token(options.collection.split(","), write=write, name=name)
    if json_output:
        print_json({**made.model_dump(mode="json"), "token": token})
        return
    out.print(token, markup=False, highlight=False)
    err.print(
        f"API token {made.id} ({'write' if made.write else 'read'}: {', '.join(made.collections)}), "
        f"role {made.role}. It is shown only now: keep it."
    )


@command(tokens_app, "revoke")
@with_global_options
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (see `pyramid tokens`).")],
    json_output: JsonOption = False,
) -> None:
    """Delete an API token and its role: requests that present it are refused from now on."""
    with open_pyramid(check_model=False, creates=True) as kp:
        gone = kp.revoke_token(token_id)
    if json_output:
        print_json(gone.model_dump(mode="json"))
        return
    err.print(f"Revoked API token {gone.id} (role {gone.role}).")
