"""What the bot has no use for still gets an answer in a private chat: a short pointer to
/help. In a group it stays quiet, unless a command names this bot (/foo@this_bot): a bare
/foo there may be another bot's."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to

POINTER = "Send me a selfie and I'll offer you meme templates. /help"


def test_stickers_voice_and_unknown_commands_in_private_get_the_pointer(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            olga = fake.user(80, "Olga")
            chat = fake.private_chat(olga)
            sent = [fake.send_sticker(chat, olga), fake.send_voice(chat, olga), fake.send_text(chat, olga, "/foo"),
                    fake.send_text(chat, olga, "/foo@memeswap_test_bot bar"), fake.send_text(chat, olga, "hello")]
            return [await bot_message(fake, 80, replying_to(message)) for message in sent], fake.messages_to(80)

    answers, messages = asyncio.run(main())
    assert [a["text"] for a in answers] == [POINTER] * 5
    assert len(messages) == 5


def test_in_a_group_only_a_command_naming_the_bot_gets_the_pointer(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            paul = fake.user(81, "Paul")
            group = fake.group_chat(-100700, "Memes")
            quiet = [fake.send_sticker(group, paul), fake.send_voice(group, paul), fake.send_text(group, paul, "/foo"),
                     fake.send_text(group, paul, "/foo@other_bot"), fake.send_text(group, paul, "hello")]
            named = fake.send_text(group, paul, "/foo@memeswap_test_bot")
            answer = await bot_message(fake, -100700, replying_to(named))
            await fake.wait_for(lambda: not fake.pending_updates)  # every update was handed to the bot
            await asyncio.sleep(0.5)  # and handled
            return answer, fake.messages_to(-100700), quiet

    answer, messages, quiet = asyncio.run(main())
    assert answer["text"] == POINTER
    assert messages == [answer]  # nothing said to the others
