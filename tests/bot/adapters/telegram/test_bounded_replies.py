"""A name as long as a Telegram message (4,096 characters) is refused in one short line: the
refusal quotes a bounded part of it, so the reply itself fits in a message."""

from __future__ import annotations

import asyncio
import logging

from tests.fakes.telegram_api import FakeTelegram

MAX_TEXT = 4096
REFUSAL = ("⚠️ Invalid template name '" + "a" * 40 + "…': use 1-32 lowercase letters, digits and dashes, "
           "starting with a letter or digit.")


def longest_command(command: str) -> str:
    """`command` and a name that fill one Telegram message."""
    return f"{command} " + "a" * (MAX_TEXT - len(command) - 1)


async def next_warning(fake: FakeTelegram, chat_id: int, before: int) -> str:
    """The text of the chat's next "⚠️" message after the first `before` of them (a reply's
    refusal, or the line the error handler sends when the reply failed)."""
    def warnings() -> list[str]:
        return [m["text"] for m in fake.messages_to(chat_id) if m.get("text", "").startswith("⚠️")]

    await fake.wait_for(lambda: len(warnings()) > before, 60)
    return warnings()[before]


def test_a_name_as_long_as_a_message_gets_one_short_line(telegram_bot, template_media, caplog):
    async def main():
        async with telegram_bot() as (fake, services):
            ada = fake.user(20, "Ada")
            chat = fake.private_chat(ada)
            fake.send_text(chat, ada, longest_command("/removetemplate"))
            removed = await next_warning(fake, 20, 0)
            clip = fake.send_animation(chat, ada, template_media.read_bytes())
            fake.send_text(chat, ada, longest_command("/addtemplate"), reply_to=clip)
            added = await next_warning(fake, 20, 1)
            return removed, added

    removed, added = asyncio.run(main())
    assert removed == added == REFUSAL
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
