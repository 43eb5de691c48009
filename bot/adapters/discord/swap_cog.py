"""/swap with template autocomplete, and "Swap my face into this" on any message's GIF."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from memeswap.bot.adapters.discord.attachments import IMAGE, checked, media_in, require_within
from memeswap.bot.adapters.discord.delivery import InteractionDelivery, reply_address
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for
from memeswap.bot.core.templates import TemplateInfo, search
from memeswap.bot.core.uploads import staged_upload
from memeswap.bot.core.wording import CONSENT, PRIVACY, WHAT_IT_DOES
from memeswap.bot.safe_download import SafeDownloader
from memeswap.bot.services import BotServices
from memeswap.inference.errors import InputError
from memeswap.inference.media.formats.registry import FORMATS, media_format

if TYPE_CHECKING:
    from memeswap.bot.adapters.discord.client import MemeswapBot, ShardedMemeswapBot

MAX_CHOICES = 25  # Discord's cap on autocomplete choices
# Discord shows every output format inline (GIF, MP4 and WebP), so `format:` offers them all.
FORMAT_CHOICES = [app_commands.Choice(name=media_format(name).title, value=name) for name in FORMATS]
HELP = f"""{WHAT_IT_DOES}

`/swap template:` with a `selfie:` photo (or your saved face); `format:` GIF (default), MP4 or WebP
Right-click a GIF → Apps → **Swap my face into this**
`/face set|show|delete` · `/templates list|add|remove` (adding needs Manage Server) · `/forget`

{CONSENT}
{PRIVACY}"""


def swap_cooldown(interaction: discord.Interaction[MemeswapBot | ShardedMemeswapBot]) -> app_commands.Cooldown | None:
    """One swap per person per `MEMESWAP_DISCORD_COOLDOWN_S` (none when it is 0)."""
    seconds = interaction.client.services.settings.discord_cooldown_s
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


class SwapCog(ServicesCog):
    def __init__(self, bot: commands.bot.BotBase, services: BotServices | None, downloader: SafeDownloader) -> None:
        super().__init__(bot, services, downloader)
        # Context menus cannot live inside a cog class: made here, added to the tree on load.
        self.swap_into = app_commands.ContextMenu(name="Swap my face into this", callback=self.swap_into_message)

    @functools.cached_property
    def delivery(self) -> InteractionDelivery:
        return InteractionDelivery(self.services)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.swap_into)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.swap_into.name, type=self.swap_into.type)

    @app_commands.command(name="help", description="What memeswap does, and how it treats your face")
    async def help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(HELP, ephemeral=True)

    @app_commands.command(name="swap", description="Put your face into a meme template")
    @app_commands.describe(template="The meme template", selfie="A photo of your face (else your saved face)",
                           output_format="The meme's file type (default GIF; MP4 keeps a video template's sound)")
    @app_commands.rename(output_format="format")
    @app_commands.choices(output_format=FORMAT_CHOICES)
    @app_commands.checks.dynamic_cooldown(swap_cooldown, key=lambda i: i.user.id)
    async def swap(self, interaction: discord.Interaction, template: str,
                   selfie: discord.Attachment | None = None,
                   output_format: app_commands.Choice[str] | None = None) -> None:
        await interaction.response.defer(thinking=True)
        settings = self.services.settings
        requester = requester_for(interaction)
        try:
            photo = None
            if selfie is not None:
                media = checked(selfie, IMAGE, "a photo of your face", settings.max_upload_bytes)
                photo = await self.downloader.fetch(media.url, settings.max_upload_bytes)
            job = await self.services.swaps.start(requester, template, selfie=photo,
                                                  format=output_format.value if output_format else "gif",
                                                  max_bytes=interaction.filesize_limit,
                                                  reply_to=reply_address(interaction))
        except InputError as error:
            await refuse(interaction, error)
            return
        await self.delivery.follow(interaction, job)

    @swap.autocomplete("template")
    async def template_choices(self, interaction: discord.Interaction,
                               current: str) -> list[app_commands.Choice[str]]:
        visible = await self.services.templates.visible(requester_for(interaction))
        return [app_commands.Choice(name=_label(info), value=info.name)
                for info in search(visible, current, MAX_CHOICES)]

    @app_commands.checks.dynamic_cooldown(swap_cooldown, key=lambda i: i.user.id)
    async def swap_into_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message's GIF, video or image as a one-off template, with the saved face."""
        await interaction.response.defer(thinking=True)
        settings = self.services.settings
        requester = requester_for(interaction)
        media = media_in(message)
        try:
            if media is None:
                raise InputError("that message has no GIF, video or image to swap into", code="bad_media")
            require_within(media, settings.max_template_bytes)
            selfie = await self.services.faces.load(requester)  # before a download of up to 50 MB
            data = await self.downloader.fetch(media.url, settings.max_template_bytes)
            with staged_upload(data, media.content_type, "memeswap-clip-") as path:
                job = await self.services.swaps.start_one_off(requester, path, selfie=selfie,
                                                              max_bytes=interaction.filesize_limit,
                                                              reply_to=reply_address(interaction))
        except InputError as error:
            await refuse(interaction, error)
            return
        await self.delivery.follow(interaction, job)


def _label(info: TemplateInfo) -> str:
    return (f"★ {info.title}" if info.added_here else info.title)[:100]
