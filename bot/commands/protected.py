"""`memeswap protected`: faces that must never be swapped in or out, deployment-wide."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from memeswap.bot.commands.state import OPERATOR, out, protected_list, state_of, with_database
from memeswap.inference.errors import InputError

if TYPE_CHECKING:
    from memeswap.bot.core.protection import ProtectedLabel

app = typer.Typer(no_args_is_help=True, help="Faces that must never be swapped in or out, deployment-wide.")


@app.command("add")
def protected_add(ctx: typer.Context, photo: Path,
                  label: Annotated[str, typer.Option("--label", help="For operators only; never shown to users.")]
                  ) -> None:
    """Protect the largest face in PHOTO; only its descriptor is kept, not the photo."""

    if not photo.is_file():
        raise InputError(f"no such file: {photo}")
    database, protected = protected_list(state_of(ctx))

    async def add() -> int:
        try:
            await database.migrate()
            return await protected.add(OPERATOR, photo.read_bytes(), label)
        finally:
            await database.close()

    held = with_database(add)
    more = f" ('{label}' was in use already: it now holds {held} faces)" if held > 1 else ""
    out.print(f"protected '{label}': that face can no longer be swapped in or out{more}", highlight=False)


@app.command("list")
def protected_list_command(ctx: typer.Context) -> None:
    """The deployment-wide labels, with how many faces each holds and when it was first added."""

    from memeswap.bot.assembly import open_database
    from memeswap.bot.core.protection import protected_labels

    database = open_database(state_of(ctx).settings)

    async def labels() -> list[ProtectedLabel]:
        try:
            await database.migrate()
            return await protected_labels(database)
        finally:
            await database.close()

    found = with_database(labels)
    if not found:
        out.print("no protected faces (add one with `memeswap protected add PHOTO --label L`)", highlight=False)
    for entry in found:
        out.print(f"{entry.label}  {entry.faces} face{'s' if entry.faces != 1 else ''}  "
                  f"added {entry.first_added:%Y-%m-%d}", highlight=False, markup=False)


@app.command("remove")
def protected_remove(ctx: typer.Context, label: str) -> None:
    """Stop protecting the faces stored under LABEL."""

    database, protected = protected_list(state_of(ctx))

    async def remove() -> int:
        try:
            await database.migrate()
            return await protected.remove(OPERATOR, label)
        finally:
            await database.close()

    if not with_database(remove):
        raise InputError(f"no protected face labelled {label!r}")
    out.print(f"'{label}' is no longer protected", highlight=False)


