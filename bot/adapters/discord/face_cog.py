"""/face set, /face show, /face delete and /forget: a person's own data."""

from __future__ import annotations

import io

import discord
from discord import app_commands

from memeswap.bot.adapters.discord.attachments import IMAGE, checked
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for, say
from memeswap.inference.errors import InputError


class FaceCog(ServicesCog):
    face = app_commands.Group(name="face", description="Your saved face, used when /swap has no selfie")

    @face.command(name="set", description="Save the face in a photo for your memes")
    @app_commands.describe(selfie="A clear, front-facing photo of your face")
    async def face_set(self, interaction: discord.Interaction, selfie: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        limit = self.services.settings.max_upload_bytes
        try:
            media = checked(selfie, IMAGE, "a photo of your face", limit)
            photo = await self.downloader.fetch(media.url, limit)
            await self.services.faces.save(requester_for(interaction), photo)
        except InputError as error:
            await refuse(interaction, error)
            return
        await say(interaction, "✅ Saved your face (a small crop, not the photo). /swap uses it when you attach "
                               "no selfie; /face delete or /forget erase it.")

    @face.command(name="show", description="See the face you saved")
    async def face_show(self, interaction: discord.Interaction) -> None:
        try:
            crop = await self.services.faces.load(requester_for(interaction))
        except InputError as error:
            await refuse(interaction, error)
            return
        await interaction.response.send_message("Your saved face:", ephemeral=True,
                                                file=discord.File(io.BytesIO(crop), filename="face.png"))

    @face.command(name="delete", description="Delete the face you saved")
    async def face_delete(self, interaction: discord.Interaction) -> None:
        gone = await self.services.faces.delete(requester_for(interaction), "default")
        await say(interaction, "Deleted your saved face." if gone else "You had no saved face.")

    @app_commands.command(name="forget", description="Erase everything memeswap keeps about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        # Deferred: stopping a swap waits for a meme already being posted, which can pass 3 s.
        await interaction.response.defer(thinking=True, ephemeral=True)
        gone = await self.services.forget(requester_for(interaction))
        await say(interaction, gone.line())
