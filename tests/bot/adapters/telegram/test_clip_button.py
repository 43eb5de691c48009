"""A GIF or video sent (or forwarded) to the bot without a command gets a "Swap my face into
this" button: the clip becomes a one-off template, screened like a new one, with the saved
face swapped in. The button's data comes from the client and is checked like any other."""

from __future__ import annotations

import asyncio

from memeswap.bot.adapters.telegram.handlers import CLIP_BUTTON, CLIP_EXPIRED, CLIP_NO_FACE
from memeswap.inference.media.decode import read_frames
from tests.bot.adapters.telegram.test_conversation import (
    bot_message,
    buttons,
    decode_mp4,
    replying_to,
    sent,
    with_text,
)


def test_a_sent_and_a_forwarded_clip_become_memes_with_the_saved_face(telegram_bot, selfie_jpeg, template_media,
                                                                       carries_face, library, logged_errors):
    clip = template_media.read_bytes()

    async def main():
        async with telegram_bot() as (fake, services):
            ida, ugo = fake.user(70, "Ida"), fake.user(71, "Ugo")
            chat = fake.private_chat(ida)
            fake.send_photo(chat, ida, selfie_jpeg, caption="/face")
            await bot_message(fake, 70, with_text("saved your face"))
            sent_clip = fake.send_animation(chat, ida, clip)
            offer = await bot_message(fake, 70, replying_to(sent_clip))
            fake.press_button(chat, ida, offer, CLIP_BUTTON)
            first = await bot_message(fake, 70, lambda m: "animation" in m)
            await bot_message(fake, 70, with_text("done"))

            elsewhere = fake.private_chat(ugo)
            original = fake.send_animation(elsewhere, ugo, clip)
            forwarded = fake.forward(chat, ida, original, original_sender=ugo)
            forwarded_offer = await bot_message(fake, 70, replying_to(forwarded))
            fake.press_button(chat, ida, forwarded_offer, CLIP_BUTTON)
            await fake.wait_for(lambda: len([m for m in fake.messages_to(70) if "animation" in m]) == 2, 60)
            memes = [m for m in fake.messages_to(70) if "animation" in m]
            one_offs = library.scope_keys()
            return offer, forwarded_offer, first, memes, one_offs, fake.messages_to(71)

    offer, forwarded_offer, first, memes, one_offs, to_ugo = asyncio.run(main())
    assert offer["text"] == "Want your face in this?" and buttons(offer) == [CLIP_BUTTON]
    assert buttons(forwarded_offer) == [CLIP_BUTTON]
    originals = list(read_frames(template_media))
    for meme in memes:
        carries_face(decode_mp4(meme["animation_bytes"]), selfie_jpeg, originals)
    # The one-off templates went with their jobs: no folder of them is left.
    assert all(not library.scoped_names(key) for key in one_offs)
    assert [m["text"] for m in to_ugo if "reply_markup" in m] == [  # Ugo's own clip got its own offer
        "Want your face in this?"]
    assert logged_errors() == []


def test_without_a_saved_face_the_button_says_how_to_save_one(telegram_bot, template_media):
    async def main():
        async with telegram_bot() as (fake, services):
            jo = fake.user(72, "Jo")
            chat = fake.private_chat(jo)
            clip = fake.send_animation(chat, jo, template_media.read_bytes())
            offer = await bot_message(fake, 72, replying_to(clip))
            tap = fake.press_button(chat, jo, offer, CLIP_BUTTON)["id"]
            await fake.wait_for(lambda: tap in fake.answered_callbacks())
            return sent(fake, "answerCallbackQuery"), [r for r in fake.requests if r["method"] == "getFile"]

    answers, fetched = asyncio.run(main())
    assert answers[0]["params"]["text"] == f"⚠️ {CLIP_NO_FACE}" and answers[0]["params"]["show_alert"]
    assert fetched == []  # nothing was downloaded


def test_an_oversized_clip_gets_one_line_and_an_invalid_one_ends_in_its_status(telegram_bot, selfie_jpeg,
                                                                               template_media, logged_errors):
    async def main():
        size = len(template_media.read_bytes())
        async with telegram_bot(telegram_download_bytes=size + 100) as (fake, services):
            kai = fake.user(73, "Kai")
            chat = fake.private_chat(kai)
            fake.send_photo(chat, kai, selfie_jpeg, caption="/face")
            await bot_message(fake, 73, with_text("saved your face"))
            big = fake.send_animation(chat, kai, bytes(size + 200))
            refused = await bot_message(fake, 73, replying_to(big))
            broken = fake.send_animation(chat, kai, b"\x00\x00\x00\x18ftypisom" + bytes(4000))
            offer = await bot_message(fake, 73, replying_to(broken))
            fake.press_button(chat, kai, offer, CLIP_BUTTON)
            status = await bot_message(fake, 73, lambda m: replying_to(offer)(m) and "⚠️" in m.get("text", ""))
            return refused, status, fake.messages_to(73), sent(fake, "sendAnimation")

    refused, status, messages, animations = asyncio.run(main())
    assert refused["text"].startswith("⚠️ That file is") and "reply_markup" not in refused
    assert "\n" not in status["text"] and "Traceback" not in status["text"]
    assert animations == []
    assert logged_errors() == []


HOSTILE = [CLIP_BUTTON + "x", "clip:" + "a" * 60, "clip:../../etc", "clip:"]


def test_a_forged_or_expired_clip_button_fetches_nothing(telegram_bot, selfie_jpeg, logged_errors):
    async def main():
        async with telegram_bot() as (fake, services):
            lou = fake.user(74, "Lou")
            chat = fake.private_chat(lou)
            photo = fake.send_photo(chat, lou, selfie_jpeg, caption="/face")
            saved = await bot_message(fake, 74, with_text("saved your face"))
            picker = fake.send_photo(chat, lou, selfie_jpeg)
            keyboard = await bot_message(fake, 74, replying_to(picker))
            taps = [fake.send_callback(chat, lou, keyboard, data)["id"] for data in HOSTILE]
            # The button's own data on a message whose clip Telegram no longer shows.
            expired = fake.send_callback(chat, lou, saved, CLIP_BUTTON)["id"]
            await fake.wait_for(lambda: set(taps) | {expired} <= set(fake.answered_callbacks()), 20)
            fetched = [r for r in fake.requests if r["method"] == "getFile"]
            return photo, sent(fake, "answerCallbackQuery"), taps, expired, fetched

    photo, answers, taps, expired, fetched = asyncio.run(main())
    said = {a["params"]["callback_query_id"]: a["params"].get("text") for a in answers}
    assert said[expired] == CLIP_EXPIRED
    assert {said[t] for t in taps} == {None}  # data this bot did not make is answered, never echoed
    assert len(fetched) == 2  # the two photos' checks; no tap fetched anything
    assert logged_errors() == []
