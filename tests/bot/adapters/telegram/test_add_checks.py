"""An /addtemplate that cannot succeed is refused before its file is fetched."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to


def test_a_taken_or_reserved_name_is_refused_before_any_download(telegram_bot, template_media):
    clip = template_media.read_bytes()

    async def main():
        async with telegram_bot() as (fake, services):
            ada = fake.user(10, "Ada")
            chat = fake.private_chat(ada)
            first = fake.send_animation(chat, ada, clip, caption="/addtemplate party")
            await bot_message(fake, 10, lambda m: replying_to(first)(m) and "✅" in (m.get("text") or ""))
            downloads = len([r for r in fake.requests if r["method"] == "getFile"])
            taken = fake.send_animation(chat, ada, clip, caption="/addtemplate party")
            reserved = fake.send_animation(chat, ada, clip, caption="/addtemplate one-off-party")
            answers = [await bot_message(fake, 10, replying_to(m)) for m in (taken, reserved)]
            return downloads, [a["text"] for a in answers], len([r for r in fake.requests
                                                                  if r["method"] == "getFile"])

    before, answers, after = asyncio.run(main())
    assert answers == ["⚠️ A template named 'party' already exists here.",
                       "⚠️ Names starting with 'one-off-' are reserved; pick another name."]
    assert after == before  # neither clip was fetched
