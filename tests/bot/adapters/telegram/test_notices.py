"""What the CLI says about a swap, the chat says too: the job's notices come with the meme."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.conftest import jpeg
from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to, with_text


def test_a_group_photo_as_the_selfie_says_which_face_was_used(telegram_bot, group):
    image, _ = group
    two = image[150:600, 400:900]  # the people of faces 2 and 3, the larger one facing the camera

    async def main():
        async with telegram_bot() as (fake, services):
            alice = fake.user(7, "Alice")
            chat = fake.private_chat(alice)
            photo = fake.send_photo(chat, alice, jpeg(two))
            picker = await bot_message(fake, 7, replying_to(photo))
            fake.press_button(chat, alice, picker, "photo:bounce")
            return await bot_message(fake, 7, with_text("✅ Done"))

    done = asyncio.run(main())
    assert done["text"] == "✅ Done!\nℹ️ Found 2 faces in the photo; used the largest one."
