"""/templates list for everyone; /templates-admin add, remove, reports and resolve for those
who may change a server's templates (in a DM with the bot, they are the person's own).

Add and remove live in a top-level group of their own because Discord applies a command's
`default_member_permissions`, `contexts` and `integration_types` to top-level commands only,
never to one subcommand of a group: with "Manage Server" as the default on /templates-admin,
members do not see what they cannot use. A server's admins can change that default in its
Integrations settings, so the handlers still check the permission themselves.
"""

from __future__ import annotations

import io
import logging

import discord
from discord import app_commands

from memeswap.bot.adapters.discord.attachments import CLIP, checked
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for, say
from memeswap.bot.core.templates import added_here_first
from memeswap.bot.core.uploads import staged_upload
from memeswap.inference.errors import InputError

log = logging.getLogger("memeswap.discord")

# A server's install only: a person's install has no server to add to. In a server, or in a
# DM with the bot (the person's own templates); never in other people's DMs or group DMs.
ADMIN_CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
ADMIN_INSTALLS = app_commands.AppInstallationType(guild=True, user=False)


class TemplatesCog(ServicesCog):
    templates = app_commands.Group(name="templates", description="Meme templates you can use here")
    admin = app_commands.Group(name="templates-admin", description="This server's templates and their reports",
                               default_permissions=discord.Permissions(manage_guild=True),
                               allowed_contexts=ADMIN_CONTEXTS, allowed_installs=ADMIN_INSTALLS)

    @templates.command(name="list", description="The templates you can use here")
    async def list_templates(self, interaction: discord.Interaction) -> None:
        """The names, and a preview sheet numbering them (added here first, as on Telegram)."""
        requester = requester_for(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)  # a sheet may take seconds to render
        visible = await self.services.templates.visible(requester)
        builtin = [t.name for t in visible if not t.added_here]
        own = [t.name for t in visible if t.added_here]
        lines = [f"**Built-in** ({len(builtin)}): {', '.join(builtin)}"]
        lines.append(f"**Added here** ({len(own)}): {', '.join(own)}" if own else
                     "**Added here**: none yet — `/templates-admin add` (needs Manage Server)")
        try:
            sheet = await self.services.previews.sheet(requester.user_key, added_here_first(visible))
        except InputError as error:  # busy, or past its deadline: the names alone
            log.info("/templates list without its preview sheet: %s", error)
            await say(interaction, "\n".join(lines))
            return
        lines.append(sheet.summary)
        await say(interaction, "\n".join(lines), attachments=[discord.File(io.BytesIO(sheet.data), sheet.filename)])

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

    @admin.command(name="reports", description="Templates people reported here, not decided on yet")
    async def reports(self, interaction: discord.Interaction) -> None:
        requester = requester_for(interaction)
        if not requester.is_scope_admin:
            await say(interaction, "⚠️ Only an admin of this server can see its reports.")
            return
        cases = await self.services.reports.open_cases(requester.scope.key)
        if not cases:
            await say(interaction, "No open reports here.")
            return
        lines = [f"#{case.report_id} “{case.template.rpartition('/')[2]}”: {case.reports} report"
                 f"{'s' if case.reports != 1 else ''}{' (hidden here)' if case.hidden else ''}" for case in cases]
        lines.append("`/templates-admin resolve report: decision:` hides it for good or shows it again.")
        await say(interaction, "\n".join(lines))

    @admin.command(name="resolve", description="Decide on a reported template: keep it hidden here, or show it")
    @app_commands.describe(report="The number /templates-admin reports shows", decision="Hide it here, or keep it")
    @app_commands.choices(decision=[app_commands.Choice(name="hide it here", value="hide"),
                                    app_commands.Choice(name="keep it", value="keep")])
    async def resolve(self, interaction: discord.Interaction, report: app_commands.Range[int, 1, 2 ** 31 - 1],
                      decision: app_commands.Choice[str]) -> None:
        try:
            done = await self.services.reports.resolve(requester_for(interaction), report,
                                                       "hide" if decision.value == "hide" else "keep")
        except InputError as error:
            await refuse(interaction, error)
            return
        name = done.template.rpartition("/")[2]
        await say(interaction, f"“{name}” stays hidden here." if done.decision == "hide" else
                  f"“{name}” is shown here again.")
