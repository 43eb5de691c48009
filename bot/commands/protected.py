"""`memeswap protected`: faces that must never be swapped in or out, deployment-wide."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memeswap.bot.commands.state import OPERATOR, out, protected_list, state_of, with_database
from memeswap.inference.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Faces that must never be swapped in or out, deployment-wide.")


@app.command("add")
def protected_add(ctx: typer.Context, photo: Path,
                  label: Annotated[str, typer.Option("--label", help="For operators only; never shown to users.")]
                  ) -> None:
    """Protect the largest face in PHOTO; only its descriptor is kept, not the photo."""

    if not photo.is_file():
        raise InputError(f"no such file: {photo}")
    database, protected = protected_list(state_of(ctx))

    async def add() -> None:
        try:
            await database.migrate()
            await protected.add(OPERATOR, photo.read_bytes(), label)
        finally:
            await database.close()

    with_database(add)
    out.print(f"protected '{label}': that face can no longer be swapped in or out", highlight=False)


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


