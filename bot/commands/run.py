"""The long-running processes: `memeswap serve` (the chat bot), `memeswap worker` (swap jobs
from Redis) and `memeswap discord sync`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated, Optional

import typer

from memeswap.bot.commands.state import out, state_of
from memeswap.inference.errors import InputError

app = typer.Typer()
discord_app = typer.Typer(no_args_is_help=True, help="Discord: sync the slash commands.")


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a swap worker for the Redis job queue (needs MEMESWAP_REDIS_URL)."""
    import asyncio

    from memeswap.bot.assembly import build_blob_store, build_worker
    from memeswap.bot.ops import run_worker, steady_malloc

    state = state_of(ctx)
    settings = state.settings
    if settings.redis_url is None:
        raise InputError("memeswap worker needs MEMESWAP_REDIS_URL; without Redis the bot runs jobs itself")
    logging.getLogger().setLevel(logging.DEBUG if state.verbose else logging.INFO)
    steady_malloc()
    # Redis is reached (or waited for) before any model loads: a wrong URL should not cost a
    # minute of start-up.
    with _stopped_while_waiting_is_a_clean_exit():
        asyncio.run(run_worker(settings, lambda metrics: build_worker(settings, state.maker,
                                                                       build_blob_store(settings), metrics)))


@app.command()
def serve(ctx: typer.Context,
          no_chat: Annotated[bool, typer.Option("--no-chat", help="No chat platform: only the services and "
                                                "/metrics and /healthz, to check a deployment before its "
                                                "tokens exist.")] = False) -> None:
    """Run the chat bot: Telegram when MEMESWAP_TELEGRAM_TOKEN is set, Discord when
    MEMESWAP_DISCORD_TOKEN is (both in one process when both are)."""
    import asyncio

    from memeswap.bot.ops import steady_malloc
    from memeswap.bot.serve import check_tokens
    from memeswap.bot.serve import serve as run_adapters

    state = state_of(ctx)
    if not no_chat:
        check_tokens(state.settings)
    logging.getLogger().setLevel(logging.DEBUG if state.verbose else logging.INFO)
    steady_malloc()
    with _stopped_while_waiting_is_a_clean_exit():
        asyncio.run(run_adapters(state.settings, chat=not no_chat))


@contextlib.contextmanager
def _stopped_while_waiting_is_a_clean_exit() -> Iterator[None]:
    """SIGTERM while the database or Redis is still awaited at start: exit 0, one log line."""
    from memeswap.bot.startup_wait import StoppedWhileWaiting

    try:
        yield
    except StoppedWhileWaiting as stopped:
        logging.getLogger("memeswap.startup").info("%s", stopped)


@discord_app.command("sync")
def discord_sync(ctx: typer.Context,
                 guild: Annotated[Optional[int], typer.Option(help="Sync to this server only (shows at once).")] = None
                 ) -> None:
    """Create or update the bot's slash commands with Discord (not done at start: Discord
    caps command creates per day). Global by default; changes take up to an hour to show."""
    import asyncio

    from memeswap.bot.adapters.discord.client import sync_commands

    names = asyncio.run(sync_commands(state_of(ctx).settings, guild))
    where = f"server {guild}" if guild is not None else "all servers"
    out.print(f"synced {len(names)} commands to {where}: {', '.join(sorted(names))}", highlight=False)


