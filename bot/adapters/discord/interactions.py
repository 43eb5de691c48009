"""What every command needs from an interaction: who asks and where, and how to say no."""

from __future__ import annotations

import discord
from discord.ext import commands

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.status import fitted, refusal_line
from memeswap.bot.core.wording import DISCORD
from memeswap.bot.safe_download import SafeDownloader
from memeswap.bot.services import BotServices
from memeswap.inference.errors import InputError

MAX_CONTENT = 2000  # characters in one Discord message


class ServicesCog(commands.Cog):
    """A cog whose commands work on the bot's services. A bot built only to sync the command
    list (`memeswap discord sync`) has none: its cogs are there for their commands' definitions,
    and none of them runs."""

    def __init__(self, bot: commands.bot.BotBase, services: BotServices | None, downloader: SafeDownloader) -> None:
        self.bot = bot
        self._services = services
        self.downloader = downloader

    @property
    def services(self) -> BotServices:
        assert self._services is not None, "no command runs in a bot built to sync the command list"
        return self._services


def requester_for(interaction: discord.Interaction) -> Requester:
    """A server's member, with Discord's word on "Manage Server"; in a DM, the person's own space."""
    user_id = str(interaction.user.id)
    if interaction.guild_id is None:
        return Requester.direct("discord", user_id)
    return Requester("discord", user_id, Scope("guild", "discord", str(interaction.guild_id)),
                     is_scope_admin=interaction.permissions.manage_guild)


async def refuse(interaction: discord.Interaction, error: InputError) -> None:
    """One line, in the response if it is still open, else in place of the "thinking" one."""
    await say(interaction, f"⚠️ {refusal_line(error, DISCORD)}")


async def say(interaction: discord.Interaction, text: str, **options) -> None:
    if interaction.response.is_done():
        await interaction.edit_original_response(content=fitted(text, MAX_CONTENT), **options)
    else:
        await interaction.response.send_message(fitted(text, MAX_CONTENT), ephemeral=True, **options)
