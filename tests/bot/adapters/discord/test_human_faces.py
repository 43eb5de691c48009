"""A pet is not a selfie, and a pet's GIF is not a template face."""

from __future__ import annotations

import asyncio

from memeswap.bot.store.models import CustomTemplate, SavedFace
from memeswap.inference.media.encode import encode_frames
from tests.bot.adapters.conftest import jpeg
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import count_rows, final_response
from tests.fakes.discord_api import PERM_MANAGE_GUILD


def test_a_cats_face_is_neither_a_selfie_nor_a_template_face(discord_bot, cat_face):
    clip = encode_frames([cat_face] * 6, "gif", fps=6).data

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            admin = fake.user(71, "ada")
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            photo = fake.attachment(world.channel["id"], jpeg(cat_face), "cat.jpg", "image/jpeg")
            saved = await final_response(fake, fake.slash_command(GUILD, world.channel, admin, "face set",
                                                                  {"selfie": photo}))
            upload = fake.attachment(world.channel["id"], clip, "cat.gif", "image/gif")
            added = await final_response(fake, fake.slash_command(GUILD, world.channel, admin, "templates-admin add",
                                                                  {"file": upload, "name": "cat"}))
            return saved, added, await count_rows(world, SavedFace), await count_rows(world, CustomTemplate)

    saved, added, faces, templates = asyncio.run(main())
    assert saved["content"] == "⚠️ No human face found in the photo; send a clear, front-facing photo of your face."
    assert added["content"] == ("⚠️ No human face found in that template; pick a GIF or video where a person's "
                                "face is clearly visible.")
    assert faces == 0 and templates == 0
