"""/templates list for everyone; /templates-admin add and remove for those who may change a
server's templates (in a DM with the bot, they are the person's own).

Add and remove live in a top-level group of their own because Discord applies a command's
`default_member_permissions`, `contexts` and `integration_types` to top-level commands only,
never to one subcommand of a group: with "Manage Server" as the default on /templates-admin,
members do not see what they cannot use. A server's admins can change that default in its
Integrations settings, so the handlers still check the permission themselves.
"""

from __future__ import annotations

import discord
from discord import app_commands

from memeswap.bot.adapters.discord.attachments import CLIP, checked
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for, say
from memeswap.bot.core.uploads import staged_upload
from memeswap.inference.errors import InputError

# A server's install only: a person's install has no server to add to. In a server, or in a
# DM with the bot (the person's own templates); never in other people's DMs or group DMs.
ADMIN_CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
ADMIN_INSTALLS = app_commands.AppInstallationType(guild=True, user=False)


class TemplatesCog(ServicesCog):
    templates = app_commands.Group(name="templates", description="Meme templates you can use here")
    admin = app_commands.Group(name="templates-admin", description="Add or remove this server's templates",
                               default_permissions=discord.Permissions(manage_guild=True),
                               allowed_contexts=ADMIN_CONTEXTS, allowed_installs=ADMIN_INSTALLS)

    @templates.command(name="list", description="The templates you can use here")
    async def list_templates(self, interaction: discord.Interaction) -> None:
        visible = await self.services.templates.visible(requester_for(interaction))
        builtin = [t.name for t in visible if not t.added_here]
        own = [t.name for t in visible if t.added_here]
        lines = [f"**Built-in** ({len(builtin)}): {', '.join(builtin)}"]
        lines.append(f"**Added here** ({len(own)}): {', '.join(own)}" if own else
                     "**Added here**: none yet — `/templates-admin add` (needs Manage Server)")
        await say(interaction, "\n".join(lines))

    @admin.command(name="add", description="Add a GIF or video as a template of this server")
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

    @admin.command(name="remove", description="Remove one of this server's templates")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        try:
            await self.services.templates.remove(requester_for(interaction), name.strip().lower())
        except InputError as error:
            await refuse(interaction, error)
            return
        await say(interaction, f"Removed “{name.strip().lower()}”.")
