"""The discord.py side of `memeswap serve` and `memeswap discord sync`.

`MemeswapBot` carries the cogs; it is a plain `commands.Bot` on one gateway connection, or
an `AutoShardedBot` when `MEMESWAP_DISCORD_SHARDS` asks for shards. Commands are synced
only by `memeswap discord sync` (Discord caps command creates per day), never at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from memeswap.bot.adapters.discord.delivery import InteractionDelivery
from memeswap.bot.adapters.discord.face_cog import FaceCog
from memeswap.bot.adapters.discord.interactions import say
from memeswap.bot.adapters.discord.report_button import ReportButton
from memeswap.bot.adapters.discord.swap_cog import SwapCog
from memeswap.bot.adapters.discord.templates_cog import TemplatesCog
from memeswap.bot.safe_download import SafeDownloader
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob

log = logging.getLogger("memeswap.discord")

# Every command's default (a command may narrow it, as /templates-admin does): usable in
# servers, in a DM with the bot and in DMs and group DMs between people, from a server's
# install or a person's own ("user-installable app").
EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)


def configure_discord(settings: Settings) -> None:
    """Use the REST base and gateway of the settings (a proxy, or a test server) when given,
    and drop discord.py's start-up warnings about voice, which memeswap never joins.
    discord.py reads these from class attributes, so this is process-wide by its design."""
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    if settings.discord_api_url:
        discord.http.Route.BASE = settings.discord_api_url
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


if TYPE_CHECKING:
    _BotBase = commands.bot.BotBase
else:
    _BotBase = object  # a mixin: at run time its super() is the bot class listed after it


class MemeswapClient(_BotBase):
    """What both bot classes add: the services, and the cogs over them."""

    def __init__(self, settings: Settings, services: BotServices | None, **options) -> None:
        self.settings = settings
        self._services = services
        super().__init__(**options)

    @property
    def services(self) -> BotServices:
        """None only in a bot built to sync the command list, where no command runs."""
        assert self._services is not None, "no command runs in a bot built to sync the command list"
        return self._services

    async def setup_hook(self) -> None:
        downloader = SafeDownloader.from_settings(self.settings)
        for cog in (SwapCog, FaceCog, TemplatesCog):
            await self.add_cog(cog(self, self._services, downloader))


class MemeswapBot(MemeswapClient, commands.Bot):
    """One gateway connection."""


class ShardedMemeswapBot(MemeswapClient, commands.AutoShardedBot):
    """Several shards in this process (`MEMESWAP_DISCORD_SHARDS`)."""


def build_bot(settings: Settings, services: BotServices | None) -> MemeswapBot | ShardedMemeswapBot:
    """The bot with its commands. `services` is None only for syncing the command list,
    when no command runs."""
    options = {"command_prefix": commands.when_mentioned, "intents": discord.Intents(guilds=True),
               "help_command": None, "allowed_contexts": EVERYWHERE, "allowed_installs": ANY_INSTALL}
    bot: MemeswapBot | ShardedMemeswapBot
    if settings.discord_shards == "off":
        bot = MemeswapBot(settings, services, **options)
    else:
        if settings.discord_shards != "auto":
            options["shard_count"] = settings.discord_shards
        if settings.discord_shard_ids:
            options["shard_ids"] = settings.discord_shard_ids
        bot = ShardedMemeswapBot(settings, services, **options)
    bot.tree.error(_on_command_error)
    bot.add_dynamic_items(ReportButton)
    return bot


async def _on_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """A cooldown is a friendly line; anything else is our bug: logged, and one line to the user."""
    if isinstance(error, app_commands.CommandOnCooldown):
        await say(interaction, f"⏳ Easy there! You can make another meme in {error.retry_after:.0f} s.")
        return
    log.error("command %s failed: %s", interaction.command and interaction.command.name, error,
              exc_info=error)
    with contextlib.suppress(discord.HTTPException):
        await say(interaction, "⚠️ Something went wrong on my side. Please try again.")


def _connection_ended(connection: asyncio.Task) -> InputError:
    error = connection.exception() if connection.done() and not connection.cancelled() else None
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return InputError("Discord refused the gateway intents this bot asks for", code="settings")
    return InputError(f"the Discord connection ended: {error or 'closed'}", code="settings")


def _rejected() -> InputError:
    return InputError("Discord rejected MEMESWAP_DISCORD_TOKEN; copy the bot token from the Developer Portal "
                      "(Bot → Reset Token)", code="settings")


class DiscordAdapter:
    platform = "discord"

    def __init__(self, services: BotServices) -> None:
        settings = services.settings
        if settings.discord_token is None:
            raise InputError("set MEMESWAP_DISCORD_TOKEN to your bot's token", code="settings")
        configure_discord(settings)
        self.token = settings.discord_token.get_secret_value()
        self.bot = build_bot(settings, services)
        self.delivery = InteractionDelivery(services)
        self.connection: asyncio.Task | None = None

    @staticmethod
    async def check_token(settings: Settings) -> None:
        """Log in over REST before anything heavy loads: a rejected token is one line."""
        if settings.discord_token is None:
            raise InputError("set MEMESWAP_DISCORD_TOKEN to your bot's token", code="settings")
        configure_discord(settings)
        client = discord.Client(intents=discord.Intents.none())
        try:
            await client.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise _rejected() from None
        except (discord.HTTPException, OSError) as error:
            raise InputError(f"cannot reach Discord: {error}", code="settings") from None
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DiscordAdapter]:
        """Log in and connect (discord.py reconnects by itself); the block starts once the
        gateway is ready. A connection that ends for good is one line, not a hang."""
        try:
            await self.bot.login(self.token)
        except discord.LoginFailure:
            await self.bot.close()
            raise _rejected() from None
        self.connection = asyncio.create_task(self.bot.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.bot.wait_until_ready())
        try:
            await asyncio.wait({self.connection, ready}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                raise _connection_ended(self.connection)
            log.info("discord: connected as %s to %d server(s)", self.bot.user, len(self.bot.guilds))
            yield self
        finally:
            ready.cancel()
            await self.bot.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.connection

    def stopped(self) -> asyncio.Future | None:
        """Done when the gateway connection ended for good (its error says why)."""
        return self.connection

    async def deliver_unfollowed(self, job: SwapJob, event: Succeeded | Failed) -> bool:
        if not (job.reply_to or "").startswith("discord:"):
            return False
        await self.delivery.deliver_unfollowed(self.bot, job, event)
        return True


async def sync_commands(settings: Settings, guild_id: int | None) -> list[str]:
    """Create or update the command list: globally (Discord takes up to an hour to show
    changes everywhere), or in one server (at once; for testing). Returns the names."""
    if settings.discord_token is None:
        raise InputError("set MEMESWAP_DISCORD_TOKEN to your bot's token", code="settings")
    configure_discord(settings)
    bot = build_bot(settings, None)
    try:
        try:
            await bot.login(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            raise _rejected() from None
        except OSError as error:
            raise InputError(f"cannot reach Discord: {error.strerror or error}", code="settings") from None
        guild = discord.Object(guild_id) if guild_id is not None else None
        if guild is not None:
            bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
    finally:
        await bot.close()
    return [command.name for command in synced]
