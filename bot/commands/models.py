"""`memeswap models`: the learned swapper's model files: list, fetch, verify."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from memeswap.bot.commands.state import out, progress_bars, state_of
from memeswap.inference.errors import InputError

if TYPE_CHECKING:
    from memeswap.inference.models.registry import ModelStore

app = typer.Typer(no_args_is_help=True, help="Model files for the learned swapper: list, fetch, verify.")


def _model_store(ctx: typer.Context) -> ModelStore:
    from memeswap.inference.models.registry import ModelStore

    return ModelStore(state_of(ctx).settings.models_dir)


@app.command("list")
def models_list(ctx: typer.Context,
                as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Known models: present, missing or corrupt, and their licences."""
    rows = _model_store(ctx).rows()
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        out.print(f"{row['name']:<16} {row['status']:<11} {row['role']:<11} {row['size_text']:>9}  {row['licence']}",
                  highlight=False)


@app.command("verify")
def models_verify(ctx: typer.Context) -> None:
    """Check every model file that is present against its published SHA-256."""
    store = _model_store(ctx)
    rows = store.rows()
    if all(row["status"] == "missing" for row in rows):
        out.print(f"no model files are installed in {store.folder}, so there is nothing to verify; "
                  "`memeswap models list` shows what `memeswap models fetch` can get", highlight=False)
        return
    bad = []
    for row in rows:
        if row["status"] not in ("missing",):
            out.print(f"{row['name']:<16} {row['status']}", highlight=False)
        if row["status"] in ("corrupt", "wrong_size"):
            bad.append(row["name"])
    if bad:
        raise InputError(f"{', '.join(bad)} failed verification; fetch again with: memeswap models fetch NAME")


@app.command("path")
def models_path(ctx: typer.Context) -> None:
    """Print the models folder (MEMESWAP_MODELS_DIR)."""
    print(_model_store(ctx).folder)


@app.command("fetch")
def models_fetch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A model name from `memeswap models list`.")],
    accept_license: Annotated[bool, typer.Option("--accept-license", help="Accept a non-commercial licence.")] = False,
) -> None:
    """Download one model (resumable), check its SHA-256 and put it in place atomically."""
    from memeswap.inference.models.fetch import fetch_model

    store = _model_store(ctx)
    with progress_bars() as progress:
        task = progress.add_task(f"fetching {name}", total=None)
        path = fetch_model(store, name, accept_license=accept_license,
                           progress=lambda done, total: progress.update(task, completed=done, total=total))
    out.print(f"{name}: {store.status(name)} at {path}", highlight=False)


