"""What the CLI says about a swap, the chat says too: the job's notices come with the meme."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.conftest import jpeg
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import final_response


def test_a_group_photo_as_the_selfie_says_which_face_was_used(discord_bot, group):
    image, _ = group
    two = image[150:600, 400:900]  # the people of faces 2 and 3, the larger one facing the camera

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice = fake.user(7, "alice")
            fake.member(GUILD, alice)
            selfie = fake.attachment(world.channel["id"], jpeg(two), "us.jpg", "image/jpeg")
            swap = fake.slash_command(GUILD, world.channel, alice, "swap", {"template": "bounce", "selfie": selfie})
            return await final_response(fake, swap)

    final = asyncio.run(main())
    assert final["content"] == "✅ Here's your meme!\nℹ️ Found 2 faces in the photo; used the largest one."
    assert len(final["attachments"]) == 1
