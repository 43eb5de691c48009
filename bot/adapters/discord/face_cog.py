"""/face set, /face list, /face show, /face delete and /forget: a person's own data."""

from __future__ import annotations

import io

import discord
from discord import app_commands

from memeswap.bot.adapters.discord.attachments import IMAGE, checked
from memeswap.bot.adapters.discord.interactions import ServicesCog, refuse, requester_for, say
from memeswap.bot.core.faces import DEFAULT_FACE
from memeswap.inference.errors import InputError

NAME_HELP = f"A short name for this face: letters, digits, dashes (default: {DEFAULT_FACE})"


class FaceCog(ServicesCog):
    face = app_commands.Group(name="face", description="Your saved faces, used when /swap has no selfie")

    @face.command(name="set", description="Save the face in a photo for your memes")
    @app_commands.describe(selfie="A clear, front-facing photo of your face", name=NAME_HELP)
    async def face_set(self, interaction: discord.Interaction, selfie: discord.Attachment,
                       name: app_commands.Range[str, 1, 100] = DEFAULT_FACE) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        limit = self.services.settings.max_upload_bytes
        try:
            media = checked(selfie, IMAGE, "a photo of your face", limit)
            photo = await self.downloader.fetch(media.url, limit)
            saved = await self.services.faces.save(requester_for(interaction), photo, name)
        except InputError as error:
            await refuse(interaction, error)
            return
        await say(interaction, f"✅ Saved your face as `{saved.name}` (a small crop, not the photo). /swap uses "
                               f"`{DEFAULT_FACE}` when you attach no selfie, and `faces:` picks others; "
                               "/face delete or /forget erase it.")

    @face.command(name="list", description="The names of the faces you saved")
    async def face_list(self, interaction: discord.Interaction) -> None:
        saved = await self.services.faces.list(requester_for(interaction))
        if not saved:
            await say(interaction, "You have no saved face yet: save one with `/face set`.")
            return
        most = self.services.settings.saved_faces_per_user
        await say(interaction, f"Your saved faces ({len(saved)} of {most}): "
                               + ", ".join(f"`{face.name}`" for face in saved))

    @face.command(name="show", description="See a face you saved")
    @app_commands.describe(name=f"Which face (default: {DEFAULT_FACE}, or your first)")
    async def face_show(self, interaction: discord.Interaction,
                        name: app_commands.Range[str, 1, 100] | None = None) -> None:
        try:
            crop = await self.services.faces.load(requester_for(interaction), name)
        except InputError as error:
            await refuse(interaction, error)
            return
        await interaction.response.send_message("Your saved face:", ephemeral=True,
                                                file=discord.File(io.BytesIO(crop), filename="face.png"))

    @face.command(name="delete", description="Delete a face you saved")
    @app_commands.describe(name=f"Which face (default: {DEFAULT_FACE})")
    async def face_delete(self, interaction: discord.Interaction,
                          name: app_commands.Range[str, 1, 100] = DEFAULT_FACE) -> None:
        try:
            gone = await self.services.faces.delete(requester_for(interaction), name)
        except InputError as error:
            await refuse(interaction, error)
            return
        await say(interaction, "Deleted that saved face." if gone else "You had no saved face by that name.")

    @face_show.autocomplete("name")
    @face_delete.autocomplete("name")
    async def face_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        saved = await self.services.faces.list(requester_for(interaction))
        return [app_commands.Choice(name=face.name, value=face.name) for face in saved
                if face.name.startswith(current.strip().lower())]

    @app_commands.command(name="forget", description="Erase everything memeswap keeps about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        # Deferred: stopping a swap waits for a meme already being posted, which can pass 3 s.
        await interaction.response.defer(thinking=True, ephemeral=True)
        gone = await self.services.forget(requester_for(interaction))
        await say(interaction, gone.line())
