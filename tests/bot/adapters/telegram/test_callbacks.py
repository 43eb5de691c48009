"""Callback data comes from clients, and clients may send anything: every tap is answered
(the client stops spinning), and a tap that names no template of ours fetches nothing."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to, sent, with_text

HOSTILE_TAPS = [
    "photo-page:²",  # str.isdigit() is true for "²", int("²") is not a number
    "photo-page:" + "9" * 80,
    "photo:../../x",
    "photo:" + "a" * 60,
    "photo:Bounce",
    "selfie:bounce",  # a source this bot never made
    "",
    None,  # no data at all
    "photo:no-such-template",  # the right shape, but no such template here
    "face:../x",
]


def test_every_tap_is_answered_and_a_bad_one_fetches_nothing(telegram_bot, selfie_jpeg, logged_errors):
    async def main():
        async with telegram_bot() as (fake, services):
            lea = fake.user(60, "Lea")
            chat = fake.private_chat(lea)
            photo = fake.send_photo(chat, lea, selfie_jpeg)
            picker = await bot_message(fake, 60, replying_to(photo))
            fetched_for_the_picker = [r for r in fake.requests if r["method"] == "getFile"]
            taps = [fake.send_callback(chat, lea, picker, data)["id"] for data in HOSTILE_TAPS]
            await fake.wait_for(lambda: set(taps) <= set(fake.answered_callbacks()), 20)
            # A tap that starts a swap posts a status message: wait until none is left getting ready.
            await fake.wait_for(lambda: not any(with_text("getting ready")(m) for m in fake.messages_to(60)))
            fetched = [r for r in fake.requests if r["method"] == "getFile"]
            return (fake.answered_callbacks(), taps, fetched_for_the_picker, fetched, fake.messages_to(60),
                    sent(fake, "answerCallbackQuery"))

    answered, taps, fetched_for_the_picker, fetched, messages, answers = asyncio.run(main())
    assert sorted(answered) == sorted(taps)  # each answered, once
    assert len(fetched_for_the_picker) == 1 and fetched == fetched_for_the_picker  # no tap fetched the photo
    assert [m["text"] for m in messages[1:]] == []  # no status message, no "Something went wrong"
    said = {a["params"]["callback_query_id"]: a["params"].get("text") for a in answers}
    unknown = taps[HOSTILE_TAPS.index("photo:no-such-template")]
    assert said.pop(unknown).startswith("⚠️ No template named 'no-such-template'")
    assert set(said.values()) == {None}  # data this bot did not make is not echoed, only answered
    assert logged_errors() == []


def test_a_tap_whose_handling_fails_is_answered_and_ends_in_its_status(telegram_bot, selfie_jpeg, logged_errors,
                                                                        monkeypatch):
    """Our bug, not the person's: a tap that fails before it is answered is answered with one
    line; one that fails after its status message was posted ends in that message. Either is
    logged once, with its traceback, and nothing else is said in the chat."""
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    async def main():
        async with telegram_bot() as (fake, services):
            uma = fake.user(61, "Uma")
            chat = fake.private_chat(uma)
            photo = fake.send_photo(chat, uma, selfie_jpeg)
            picker = await bot_message(fake, 61, replying_to(photo))
            with monkeypatch.context() as patch:
                patch.setattr(services.templates, "resolve", broken)
                early = fake.press_button(chat, uma, picker, "photo:bounce")["id"]
                await fake.wait_for(lambda: early in fake.answered_callbacks())
            with monkeypatch.context() as patch:
                patch.setattr(services.swaps, "start", broken)
                fake.press_button(chat, uma, picker, "photo:bounce")
                status = await bot_message(fake, 61, lambda m: replying_to(picker)(m) and "⚠️" in m["text"])
            return sent(fake, "answerCallbackQuery")[0], status, fake.messages_to(61), logged_errors()

    answer, status, messages, errors = asyncio.run(main())
    assert answer["params"]["text"] == "⚠️ Something went wrong on my side. Please try again."
    assert status["text"] == "⚠️ Something went wrong on my side. Please try again."
    assert len(messages) == 2  # the picker and the status message
    assert len(errors) == 2 and all("a bug" in line for line in errors), errors
