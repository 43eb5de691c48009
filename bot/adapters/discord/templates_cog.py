"""/templates list, add and remove: a server's own templates (adding and removing need
"Manage Server"; in a DM, they are the person's own)."""

from __future__ import annotations

import io
import logging

import discord
from discord import app_commands
from discord.ext import commands

from memeswap.bot.adapters.discord.attachments import CLIP, checked
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for, say
from memeswap.bot.core.templates import added_here_first
from memeswap.bot.core.uploads import staged_upload
from memeswap.inference.errors import InputError

log = logging.getLogger("memeswap.discord")


class TemplatesCog(ServicesCog, commands.GroupCog, group_name="templates",
                   group_description="Meme templates of this server"):
    @app_commands.command(name="list", description="The templates you can use here")
    async def list_templates(self, interaction: discord.Interaction) -> None:
        """The names, and a preview sheet numbering them (added here first, as on Telegram)."""
        requester = requester_for(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)  # a sheet may take seconds to render
        visible = await self.services.templates.visible(requester)
        builtin = [t.name for t in visible if not t.added_here]
        own = [t.name for t in visible if t.added_here]
        lines = [f"**Built-in** ({len(builtin)}): {', '.join(builtin)}"]
        lines.append(f"**Added here** ({len(own)}): {', '.join(own)}" if own else
                     "**Added here**: none yet — `/templates add` (needs Manage Server)")
        try:
            sheet = await self.services.previews.sheet(requester.user_key, added_here_first(visible))
        except InputError as error:  # busy, or past its deadline: the names alone
            log.info("/templates list without its preview sheet: %s", error)
            await say(interaction, "\n".join(lines))
            return
        lines.append(sheet.summary)
        await say(interaction, "\n".join(lines), attachments=[discord.File(io.BytesIO(sheet.data), sheet.filename)])

    @app_commands.command(name="add", description="Add a GIF or video as a template of this server")
    @app_commands.describe(file="The GIF or short video (a face clearly visible)", name="Lowercase letters, digits, -")
    async def add(self, interaction: discord.Interaction, file: discord.Attachment, name: str) -> None:
        requester = requester_for(interaction)
        settings = self.services.settings
        try:
            name = name.strip().lower()
            await self.services.templates.check_can_add(requester, name, file.size)  # before any download
            media = checked(file, CLIP, "a GIF or video", settings.max_template_bytes)
            await interaction.response.defer(thinking=True)
            data = await self.downloader.fetch(media.url, settings.max_template_bytes)
            with staged_upload(data, media.content_type, "memeswap-upload-") as path:
                info = await self.services.templates.add(requester, path, name)
        except InputError as error:
            await refuse(interaction, error)
            return
        where = "this server" if requester.scope.kind == "guild" else "you"
        await say(interaction, f"✅ Added “{info.name}” for {where}: `/swap template:{info.name}`")

    @app_commands.command(name="remove", description="Remove one of this server's templates")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        try:
            await self.services.templates.remove(requester_for(interaction), name.strip().lower())
        except InputError as error:
            await refuse(interaction, error)
            return
        await say(interaction, f"Removed “{name.strip().lower()}”.")
