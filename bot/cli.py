"""The `memeswap` command line: the top-level options and error handling; each command
group is its own module in `bot.commands`, which this one only adds."""

import logging
import sys
import traceback
from typing import Annotated

import typer

from memeswap.bot.commands import bench, models, protected, reports, run, swap, templates
from memeswap.bot.commands.state import CliState, err
from memeswap.inference.errors import InputError, OutputTooLargeError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="memeswap: your face in every frame of a meme. Swap your own face, or a friend's who "
                       "agreed; every result is labelled as AI-generated.")
app.add_typer(swap.app)
app.add_typer(bench.app)
app.add_typer(run.app)
app.add_typer(templates.app, name="templates")
app.add_typer(protected.app, name="protected")
app.add_typer(reports.app, name="reports")
app.add_typer(models.app, name="models")
app.add_typer(run.discord_app, name="discord")


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"memeswap {version('memeswap')}")
        raise typer.Exit()


@app.callback()
def root(ctx: typer.Context,
         verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs and tracebacks.")] = False,
         show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                                    help="Print the version and exit.")] = False,
         ) -> None:
    from memeswap.bot.settings import Settings
    from memeswap.inference.observability.logs import configure_logging

    state = CliState(verbose, Settings())
    configure_logging(state.settings.log_format, logging.INFO if verbose else logging.WARNING,
                      secrets=state.settings.secret_values())
    ctx.obj = state


def main() -> None:
    verbose = "--verbose" in sys.argv[1:] or "-v" in sys.argv[1:]
    try:
        app()  # usage errors and --help are handled (and exit) inside
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:
        message, status = _one_line(error)
        if status == 1 and verbose:
            traceback.print_exc()
        err.print(message, highlight=False, markup=False)
        sys.exit(status)


def _one_line(error: Exception) -> tuple[str, int]:
    """The line a failure prints and the exit status: 2 for what the user can fix (a bad
    input, a --max-bytes too small, a MEMESWAP_* setting that does not parse), 1 for our bug."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(error, (InputError, OutputTooLargeError)):
        unknown = getattr(error, "code", "") == "unknown_template" and "did you mean" not in str(error)
        hint = "; `memeswap templates list` shows them" if unknown else ""
        return f"error: {error}{hint}", 2
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        name = "MEMESWAP_" + str(first["loc"][0]).upper() if first["loc"] else "a setting"
        return f"error: invalid {name}: {first['msg'].removeprefix('Value error, ')}", 2
    if isinstance(error, SettingsError):  # a list or object setting that is not JSON
        return f"error: {error}", 2
    return f"internal error: {type(error).__name__}: {error} (run with --verbose for details)", 1
