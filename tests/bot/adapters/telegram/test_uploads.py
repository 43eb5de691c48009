"""Files people send to /addtemplate: the sender's file name is never a path, and a file that
is not a GIF or video gets the template's own answer, in private chats and in groups."""

from __future__ import annotations

import asyncio

from memeswap.bot.store.models import CustomTemplate
from tests.bot.adapters.telegram.test_conversation import bot_message, count_rows, replying_to, sent

NOT_A_CLIP = "⚠️ That file isn't a GIF or a video. Send a GIF or video with the caption /addtemplate NAME."


def test_a_gif_named_dot_or_dot_dot_is_added(telegram_bot, template_gif, logged_errors):
    async def main():
        async with telegram_bot() as (fake, services):
            max_ = fake.user(70, "Max")
            chat = fake.private_chat(max_)
            finals = []
            for file_name, name in (("..", "dots"), (".", "dot")):
                upload = fake.send_document(chat, max_, template_gif, file_name, "image/gif",
                                            caption=f"/addtemplate {name}")
                status = await bot_message(fake, 70, replying_to(upload))
                await fake.wait_for(lambda: not fake.messages_to(70)[-1]["text"].startswith("⏳"), 60)
                finals.append(next(m for m in fake.messages_to(70) if m["message_id"] == status["message_id"]))
            return finals, fake.messages_to(70), await count_rows(services, CustomTemplate)

    finals, messages, rows = asyncio.run(main())
    assert [m["text"] for m in finals] == [
        "✅ Added “dots” for you. Send a selfie (or /templates) to use it.",
        "✅ Added “dot” for you. Send a selfie (or /templates) to use it."]
    assert len(messages) == 2 and rows == 2  # one answer each, nothing else said
    assert logged_errors() == []


def test_addtemplate_on_a_file_that_is_not_a_clip_says_what_to_send(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            nina = fake.user(71, "Nina")
            pdf = b"%PDF-1.4\n" + bytes(2000)
            private = fake.send_document(fake.private_chat(nina), nina, pdf, "notes.pdf", "application/pdf",
                                         caption="/addtemplate party")
            in_private = await bot_message(fake, 71, replying_to(private))
            group = fake.group_chat(-100600, "Memes")
            fake.set_admins(-100600, [71])
            posted = fake.send_document(group, nina, pdf, "notes.pdf", "application/pdf",
                                        caption="/addtemplate party")
            in_group = await bot_message(fake, -100600, replying_to(posted))
            replied = fake.send_text(group, nina, "/addtemplate party", reply_to=posted)
            to_the_reply = await bot_message(fake, -100600, replying_to(replied))
            return in_private, in_group, to_the_reply, [r["method"] for r in fake.requests], \
                sent(fake, "sendMessage")

    in_private, in_group, to_the_reply, methods, messages = asyncio.run(main())
    assert in_private["text"] == in_group["text"] == to_the_reply["text"] == NOT_A_CLIP
    assert len(messages) == 3 and "getFile" not in methods
