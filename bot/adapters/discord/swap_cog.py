"""/swap with template autocomplete, and "Swap my face into this" on any message's GIF."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from memeswap.bot.adapters.discord.attachments import IMAGE, checked, media_in, require_within
from memeswap.bot.adapters.discord.delivery import InteractionDelivery, reply_address
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for
from memeswap.bot.core.face_maps import KEEP, parse_face_map
from memeswap.bot.core.templates import TemplateInfo, search
from memeswap.bot.core.uploads import staged_upload
from memeswap.bot.core.wording import CONSENT, PRIVACY, WHAT_IT_DOES
from memeswap.bot.gif_providers.registry import search_enabled
from memeswap.bot.safe_download import SafeDownloader
from memeswap.bot.services import BotServices
from memeswap.inference.errors import InputError
from memeswap.inference.media.formats.registry import FORMATS, media_format

if TYPE_CHECKING:
    from memeswap.bot.adapters.discord.client import MemeswapBot, MemeswapClient, ShardedMemeswapBot

MAX_CHOICES = 25  # Discord's cap on autocomplete choices
MAX_CHOICE_CHARS = 100  # and on a choice's name and value
FACES_HELP = "Saved faces for the template's faces in order, e.g. me,_,ana (_ keeps a face)"
# Discord shows every output format inline (GIF, MP4 and WebP), so `format:` offers them all.
FORMAT_CHOICES = [app_commands.Choice(name=media_format(name).title, value=name) for name in FORMATS]
HELP = f"""{WHAT_IT_DOES}

`/swap template:` with a `selfie:` photo (or your saved face); `faces: me,_,ana` puts saved faces on a \
template's faces in order (`_` keeps one); `format:` GIF (default), MP4 or WebP
Right-click a GIF → Apps → **Swap my face into this**
`/face set|list|show|delete` · `/templates list` · `/forget`
`/templates-admin add|remove|reports|resolve` (needs Manage Server)
🚩 **Report** under a meme tells the moderators

{CONSENT}
{PRIVACY}"""

GIF_HELP = "\n\nGIF search is on: `/swap search:` finds a GIF to swap your face into."


def swap_cooldown(interaction: discord.Interaction[MemeswapBot | ShardedMemeswapBot]) -> app_commands.Cooldown | None:
    """One swap per person per `MEMESWAP_DISCORD_COOLDOWN_S` (none when it is 0)."""
    seconds = interaction.client.services.settings.discord_cooldown_s
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


def offer_search(command: app_commands.Command, searching: bool) -> None:
    """Leave `/swap`'s `search:` option out unless GIF search is on (and then `template:` is
    required again). discord.py builds a command's options from its callback's signature,
    with no public way to leave one out at run time; each cog instance has its own copy of
    the command and of this mapping, so the change stays with this bot."""
    if searching:
        return
    options = command._params
    del options["search"]
    options["template"] = dataclasses.replace(options["template"], required=True)


class SwapCog(ServicesCog):
    def __init__(self, bot: MemeswapClient, services: BotServices | None, downloader: SafeDownloader) -> None:
        super().__init__(bot, services, downloader)
        offer_search(self.swap, search_enabled(bot.settings))
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
        searching = self.services.gif_search is not None
        await interaction.response.send_message(HELP + GIF_HELP if searching else HELP, ephemeral=True)

    @app_commands.command(name="swap", description="Put your face into a meme template")
    @app_commands.describe(template="The meme template", selfie="A photo of your face (else your saved face)",
                           search="Or search for a GIF to swap into", faces=FACES_HELP,
                           output_format="The meme's file type (default GIF; MP4 keeps a video template's sound)")
    @app_commands.rename(output_format="format")
    @app_commands.choices(output_format=FORMAT_CHOICES)
    @app_commands.checks.dynamic_cooldown(swap_cooldown, key=lambda i: i.user.id)
    async def swap(self, interaction: discord.Interaction, template: str | None = None,
                   selfie: discord.Attachment | None = None, search: str | None = None,
                   faces: app_commands.Range[str, 1, 200] | None = None,
                   output_format: app_commands.Choice[str] | None = None) -> None:
        await interaction.response.defer(thinking=True)
        settings = self.services.settings
        requester = requester_for(interaction)
        gif_search = self.services.gif_search
        try:
            searching = search is not None and gif_search is not None
            if (template is not None) == searching:
                raise InputError("pick either a `template:` or a GIF with `search:`", code="usage")
            photo = None
            if selfie is not None:
                media = checked(selfie, IMAGE, "a photo of your face", settings.max_upload_bytes)
                photo = await self.downloader.fetch(media.url, settings.max_upload_bytes)
            chosen_format = output_format.value if output_format else "gif"
            if template is not None:
                face_map = parse_face_map(faces) if faces is not None else None
                job = await self.services.swaps.start(requester, template, selfie=photo, format=chosen_format,
                                                      max_bytes=interaction.filesize_limit,
                                                      reply_to=reply_address(interaction), face_map=face_map)
            else:
                if faces is not None:
                    raise InputError("`faces:` goes with a `template:`; a GIF from `search:` gets your face",
                                     code="usage")
                assert search is not None and gif_search is not None, "searching"
                job = await gif_search.start_swap(requester, search, selfie=photo, format=chosen_format,
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

    @swap.autocomplete("search")
    async def search_choices(self, interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[str]]:
        """GIFs for what is typed, within Discord's 3 s; none when the provider fails. The
        value is the result's id, looked up again when the command comes."""
        gif_search = self.services.gif_search
        if gif_search is None:
            return []
        return [app_commands.Choice(name=result.label[:100], value=result.id)
                for result in (await gif_search.suggestions(current))[:MAX_CHOICES]]

    @swap.autocomplete("faces")
    async def face_map_choices(self, interaction: discord.Interaction,
                               current: str) -> list[app_commands.Choice[str]]:
        """The map typed so far, its last entry completed with a saved face's name or `_`."""
        typed, _, last = current.rpartition(",")
        head = f"{typed}," if typed else ""
        if len(head) > MAX_CHOICE_CHARS - 33:  # no room left for a name
            return []
        saved = [face.name for face in await self.services.faces.list(requester_for(interaction))]
        return [app_commands.Choice(name=head + name, value=head + name)
                for name in [*saved, KEEP] if name.startswith(last.strip().lower())][:MAX_CHOICES]

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
