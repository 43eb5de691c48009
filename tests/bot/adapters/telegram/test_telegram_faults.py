"""Telegram failing under the bot: a download that times out, answers 5xx or drops the
connection ends in the status message the person is watching (no separate "Something went
wrong", no ERROR log), and a failing setMyCommands at start does not stop the bot."""

from __future__ import annotations

import asyncio

import pytest

from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to, with_text
from tests.fakes.telegram_api import DOWNLOAD, FakeTelegram

STALL_S = 8.0  # longer than python-telegram-bot's read timeout (5 s)
TOO_SLOW = "⚠️ Telegram took too long to hand over that file; please try again."
NOT_FETCHED = "⚠️ I couldn't fetch that file from Telegram; please try again."


def fault(kind: str, method: str):
    def queue(fake: FakeTelegram) -> None:
        if kind == "timeout":
            fake.stall_next(method, STALL_S)
        elif kind == "5xx":
            fake.fail_next(method, 500, retry_after=None, description="Internal Server Error")
        else:
            fake.drop_next(method)

    return queue


async def final_status(fake: FakeTelegram, chat_id: int, answering: dict, newer_than: int = 0) -> dict:
    """The bot's status message (newer than message `newer_than`) in reply to `answering`, once
    it no longer says it is busy."""
    status = await bot_message(fake, chat_id, lambda m: replying_to(answering)(m) and m["message_id"] > newer_than)

    def now() -> dict:
        return next(m for m in fake.messages_to(chat_id) if m["message_id"] == status["message_id"])

    await fake.wait_for(lambda: not now()["text"].startswith("⏳"), 30)
    return now()


def test_a_selfie_download_that_fails_ends_in_the_status_message(telegram_bot, selfie_jpeg, logged_errors):
    faults = [("timeout", "getFile"), ("5xx", "getFile"), ("drop", "getFile"),
              ("timeout", DOWNLOAD), ("5xx", DOWNLOAD), ("drop", DOWNLOAD)]

    async def main():
        async with telegram_bot() as (fake, services):
            rita = fake.user(90, "Rita")
            chat = fake.private_chat(rita)
            photo = fake.send_photo(chat, rita, selfie_jpeg)
            picker = await bot_message(fake, 90, replying_to(photo))
            finals = []
            for kind, method in faults:
                fault(kind, method)(fake)
                last = fake.messages_to(90)[-1]["message_id"]
                fake.press_button(chat, rita, picker, "photo:bounce")
                finals.append((await final_status(fake, 90, picker, newer_than=last))["text"])
            faulted = [(r["method"], r["status"], r.get("fault")) for r in fake.requests
                       if r["method"] in ("getFile", DOWNLOAD) and (r["status"] != 200 or r.get("fault"))]
            return finals, fake.messages_to(90), faulted

    finals, messages, faulted = asyncio.run(main())
    assert len(faulted) == len(faults)  # each fault was played
    assert finals == [TOO_SLOW, NOT_FETCHED, NOT_FETCHED, TOO_SLOW, NOT_FETCHED, NOT_FETCHED]
    assert not any(with_text("went wrong")(m) for m in messages)
    assert len(messages) == 1 + len(faults)  # the picker and one status message per tap
    assert logged_errors() == []


def test_a_template_download_that_fails_ends_in_the_status_message(telegram_bot, template_gif, logged_errors):
    faults = [("timeout", "getFile"), ("5xx", DOWNLOAD), ("drop", "getFile")]

    async def main():
        async with telegram_bot() as (fake, services):
            sam = fake.user(91, "Sam")
            chat = fake.private_chat(sam)
            finals = []
            for kind, method in faults:
                fault(kind, method)(fake)
                upload = fake.send_document(chat, sam, template_gif, "clip.gif", "image/gif",
                                            caption="/addtemplate party")
                finals.append((await final_status(fake, 91, upload))["text"])
            return finals, fake.messages_to(91)

    finals, messages = asyncio.run(main())
    assert finals == [TOO_SLOW, NOT_FETCHED, NOT_FETCHED]
    assert len(messages) == len(faults) and not any(with_text("went wrong")(m) for m in messages)
    assert logged_errors() == []


@pytest.mark.parametrize("kind", ["5xx", "timeout"])
def test_the_bot_serves_when_set_my_commands_fails(telegram_bot, kind, caplog):
    async def main():
        async with telegram_bot(before_start=fault(kind, "setMyCommands")) as (fake, services):
            tom = fake.user(92, "Tom")
            asked = fake.send_text(fake.private_chat(tom), tom, "/help")
            return await bot_message(fake, 92, replying_to(asked))

    answer = asyncio.run(main())
    assert "send me a selfie" in answer["text"].lower()
    warnings = [r.getMessage() for r in caplog.records if r.name == "memeswap.telegram" and r.levelname == "WARNING"]
    assert any("command list" in line for line in warnings), warnings
