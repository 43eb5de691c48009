"""`memeswap reports`: what people reported with the "Report" button under their memes, and
the operator's decisions on the templates they named."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from memeswap.bot.commands.state import OPERATOR, out, state_of, with_database
from memeswap.inference.errors import InputError

if TYPE_CHECKING:
    from memeswap.bot.core.reports import ReportRow, Resolution, TemplateReports
    from memeswap.bot.store.database import Database

app = typer.Typer(no_args_is_help=True, help="Reports of memes, and decisions on the templates they name.")


def _reports(ctx: typer.Context) -> tuple[Database, TemplateReports]:
    from memeswap.bot.assembly import open_database
    from memeswap.bot.core.reports import TemplateReports

    settings = state_of(ctx).settings
    database = open_database(settings)
    return database, TemplateReports(database, settings.reports_to_hide)


@app.command("list")
def reports_list(
    ctx: typer.Context,
    scope: Annotated[Optional[str], typer.Option("--scope", help="One place only, e.g. discord-guild-123.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only reports nobody decided on yet.")] = False,
) -> None:
    """The newest reports first: when, where, which template, who reported it, and its state
    (open, hidden, kept); a template hidden by its reports says so."""
    database, reports = _reports(ctx)

    async def listed() -> tuple[list[ReportRow], dict[str, set[str]]]:
        try:
            await database.migrate()
            rows = await reports.listed(scope, open_only)
            return rows, {key: await reports.hidden(key) for key in {row.scope_key for row in rows}}
        finally:
            await database.close()

    rows, hidden = with_database(listed)
    if not rows:
        out.print("no reports" + (" open" if open_only else "") + (f" in {scope}" if scope else ""), highlight=False)
    for row in rows:
        state = row.decision or "open"
        if row.decision is None and row.template in hidden[row.scope_key]:
            state = "open, hidden"
        state = {"hide": "hidden", "keep": "kept"}.get(state, state)
        out.print(f"#{row.id}  {row.at:%Y-%m-%d %H:%M}  {row.scope_key}  {row.template}  by {row.reporter}  {state}",
                  highlight=False, markup=False)


@app.command("resolve")
def reports_resolve(
    ctx: typer.Context,
    report_id: Annotated[int, typer.Argument(metavar="ID", help="A report's number, from `reports list`.")],
    hide: Annotated[bool, typer.Option("--hide", help="Keep its template hidden in that place.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Show its template again in that place.")] = False,
) -> None:
    """Decide for the template and place of report ID: every open report of it there is closed."""
    if hide == keep:
        raise InputError("say --hide or --keep")
    database, reports = _reports(ctx)

    async def resolve() -> Resolution:
        try:
            await database.migrate()
            return await reports.resolve(OPERATOR, report_id, "hide" if hide else "keep")
        finally:
            await database.close()

    done = with_database(resolve)
    what = "stays hidden" if done.decision == "hide" else "is shown again"
    out.print(f"'{done.template}' {what} in {done.scope_key} ({done.reports} report{'s' if done.reports != 1 else ''} "
              "closed)", highlight=False, markup=False)
