"""What every command needs from an interaction: who asks and where, and how to say no."""

from __future__ import annotations

import discord

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.core.status import fitted, refusal_line
from memeswap.bot.core.wording import DISCORD
from memeswap.inference.errors import InputError

MAX_CONTENT = 2000  # characters in one Discord message


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
