"""A pet is not a selfie: a photo whose only "face" is an animal's is refused in one line."""

from __future__ import annotations

import asyncio

from memeswap.bot.store.models import SavedFace
from tests.bot.adapters.conftest import jpeg
from tests.bot.adapters.telegram.test_conversation import bot_message, count_rows, replying_to


def test_a_cats_face_is_not_taken_for_a_selfie(telegram_bot, cat_face):
    async def main():
        async with telegram_bot() as (fake, services):
            alice = fake.user(7, "Alice")
            chat = fake.private_chat(alice)
            photo = fake.send_photo(chat, alice, jpeg(cat_face))
            answer = await bot_message(fake, 7, replying_to(photo))
            saving = fake.send_photo(chat, alice, jpeg(cat_face), caption="/face")
            saved = await bot_message(fake, 7, replying_to(saving))
            return answer, saved, await count_rows(services, SavedFace)

    answer, saved, faces = asyncio.run(main())
    refusal = "⚠️ No human face found in the photo; send a clear, front-facing photo of your face."
    assert answer["text"] == refusal and "reply_markup" not in answer  # no template keyboard
    assert saved["text"] == refusal and faces == 0
