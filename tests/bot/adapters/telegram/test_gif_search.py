"""GIF search on Telegram, end to end: python-telegram-bot against the loopback Bot API, the
search provider (GIPHY's API) played by the loopback fake, real swaps."""

from __future__ import annotations

import asyncio

from memeswap.bot.core.requesters import Requester
from memeswap.inference.media.decode import read_frames
from tests.bot.adapters.telegram.test_conversation import (
    TIMEOUT,
    bot_message,
    buttons,
    decode_mp4,
    replying_to,
    sent,
)
from tests.bot.adapters.telegram.test_unknown_input import POINTER
from tests.fakes.gif_search_api import FakeGifSearch

UNAVAILABLE = "⚠️ GIF search isn't answering right now; try again in a moment, or pick a template."


def searching(api: FakeGifSearch) -> dict:
    return {"giphy_api_key": api.key, "giphy_api_url": api.giphy_url, "download_loopback_origins": [api.origin]}


def registered(fake) -> set[str]:
    return {c["command"] for commands in fake.commands.values() for c in commands}


def test_gif_search_then_a_button_swaps_the_saved_face_into_that_gif(telegram_bot, selfie_jpeg, searchable_gif,
                                                                     carries_face, tmp_path):
    async def main():
        async with FakeGifSearch() as api:
            api.add_gif("ShakeA1", "Shake it off", searchable_gif, 220, 180)
            api.add_gif("ShakeB2", "Shaken, not stirred", searchable_gif, 220, 180)
            async with telegram_bot(**searching(api)) as (fake, services):
                alice = fake.user(7, "Alice")
                chat = fake.private_chat(alice)
                await services.faces.save(Requester.direct("telegram", "7"), selfie_jpeg)
                asked = fake.send_text(chat, alice, "/gif shake")
                offer = await bot_message(fake, 7, replying_to(asked))
                fake.press_button(chat, alice, offer, buttons(offer)[1])
                meme = await bot_message(fake, 7, lambda m: "animation" in m, TIMEOUT)
                helped = fake.send_text(chat, alice, "/help")
                help_text = (await bot_message(fake, 7, replying_to(helped)))["text"]
                return offer, meme, registered(fake), api.calls("giphy"), sent(fake, "answerCallbackQuery"), help_text

    offer, meme, commands, calls, answers, help_text = asyncio.run(main())
    assert "gif" in commands and "/gif WORDS" in help_text
    assert offer["text"] == "Tap a GIF to swap your saved face into it:"
    assert buttons(offer) == ["gif:ShakeA1", "gif:ShakeB2"]
    assert [b["text"] for row in offer["reply_markup"]["inline_keyboard"] for b in row] == [
        "Shake it off · 220×180", "Shaken, not stirred · 220×180"]
    assert [c["path"] for c in calls] == ["/giphy/v1/gifs/search"] and calls[0]["keyed"]
    assert answers[0]["params"]["text"] == "Making your meme…"
    data = meme["animation_bytes"]
    assert data[4:8] == b"ftyp"
    gif = tmp_path / "searched.gif"
    gif.write_bytes(searchable_gif)
    carries_face(decode_mp4(data), selfie_jpeg, list(read_frames(gif)))


def test_without_a_key_gif_is_an_unknown_command(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            alice = fake.user(8, "Alice")
            asked = fake.send_text(fake.private_chat(alice), alice, "/gif cats")
            answer = await bot_message(fake, 8, replying_to(asked))
            helped = fake.send_text(fake.private_chat(alice), alice, "/help")
            return answer, registered(fake), (await bot_message(fake, 8, replying_to(helped)))["text"]

    answer, commands, help_text = asyncio.run(main())
    assert answer["text"] == POINTER and "gif" not in commands and "/gif" not in help_text


def test_hostile_buttons_and_a_provider_that_is_down_get_one_line(telegram_bot, selfie_jpeg, searchable_gif):
    async def main():
        async with FakeGifSearch() as api:
            api.add_gif("ShakeA1", "Shake it off", searchable_gif, 220, 180, media_url="https://evil.example.com/a.gif")
            async with telegram_bot(**searching(api)) as (fake, services):
                alice = fake.user(9, "Alice")
                chat = fake.private_chat(alice)
                await services.faces.save(Requester.direct("telegram", "9"), selfie_jpeg)
                empty = fake.send_text(chat, alice, "/gif")
                usage = await bot_message(fake, 9, replying_to(empty))
                asked = fake.send_text(chat, alice, "/gif shake")
                offer = await bot_message(fake, 9, replying_to(asked))
                for data in ("gif:../../etc/passwd", "gif:" + "A" * 60, "gif:https://evil.example.com/a.gif", None):
                    fake.send_callback(chat, alice, offer, data)
                await fake.wait_for(lambda: len(fake.answered_callbacks()) == 4)
                quiet = len(fake.messages_to(9))
                fake.press_button(chat, alice, offer, "gif:ShakeA1")  # the provider points off the list
                refused = await bot_message(fake, 9, lambda m: m["message_id"] > offer["message_id"]
                                            and (m.get("text") or "").startswith("⚠️"), TIMEOUT)
                api.status = 503
                down = fake.send_text(chat, alice, "/gif more")
                unavailable = await bot_message(fake, 9, replying_to(down))
                api.status = None
                again = fake.send_text(chat, alice, "/gif shake")
                alive = await bot_message(fake, 9, replying_to(again))
                return usage, quiet, refused, unavailable, alive, api

    usage, quiet, refused, unavailable, alive, api = asyncio.run(main())
    assert usage["text"] == "⚠️ Say what to look for, like /gif dancing cat."
    assert quiet == 2  # hostile data is answered and dropped: nothing new in the chat
    assert refused["text"] == "⚠️ I couldn't download that file; please try another one."
    assert unavailable["text"] == UNAVAILABLE
    assert buttons(alive) == ["gif:ShakeA1"]
    assert [c for c in api.calls("giphy") if c["path"].startswith("/giphy/v1/gifs/") and "search" not in c["path"]] \
        == []  # the pressed id came from this bot's own results: no lookup
