"""What a Telegram user sees, end to end: the real python-telegram-bot against a loopback
Bot API, real swaps, a real store."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from telegram import Bot

from memeswap.bot.adapters.telegram.delivery import MemeDelivery, SentMemes, reply_address
from memeswap.bot.store.models import CustomTemplate, SavedFace, UsageEvent
from memeswap.inference.jobs.blobs import BlobNotFoundError
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob
from memeswap.inference.media.decode import read_frames
from memeswap.inference.templates.catalog import builtin_templates_dir
from tests.bot.adapters.conftest import template_frames
from tests.bot.adapters.telegram.conftest import TOKEN
from tests.fakes.telegram_api import FakeTelegram

TIMEOUT = 60.0  # a swap on a busy 2-core machine


def bot_messages(fake: FakeTelegram, chat_id: int) -> list[dict]:
    return fake.messages_to(chat_id)


async def bot_message(fake: FakeTelegram, chat_id: int, predicate, timeout: float = TIMEOUT) -> dict:
    """The first bot message in the chat (as the user sees it now) that satisfies `predicate`."""
    found: list[dict] = []

    def seen() -> bool:
        found[:] = [m for m in fake.messages_to(chat_id) if predicate(m)]
        return bool(found)

    await fake.wait_for(seen, timeout)
    return found[0]


def buttons(message: dict) -> list[str]:
    return [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def replying_to(message: dict):
    return lambda m: (m.get("reply_to_message") or {}).get("message_id") == message["message_id"]


def with_text(fragment: str):
    return lambda m: fragment.lower() in (m.get("text") or "").lower()


def sent(fake: FakeTelegram, method: str, chat_id: int | None = None) -> list[dict]:
    return [s for s in fake.sent if s["method"] == method and (chat_id is None or s["chat_id"] == chat_id)]


async def count_rows(services, model, *where) -> int:
    async with services.database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


def decode_mp4(data: bytes) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "meme.mp4"
        path.write_bytes(data)
        return list(read_frames(path))


def test_selfie_pick_and_the_meme_arrives_with_the_selfies_face(telegram_bot, selfie_jpeg, carries_face, library):
    async def main():
        async with telegram_bot() as (fake, services):
            alice = fake.user(7, "Alice")
            chat = fake.private_chat(alice)
            fake.send_text(chat, alice, "/start")
            welcome = await bot_message(fake, 7, with_text("send me a selfie"))
            photo = fake.send_photo(chat, alice, selfie_jpeg)
            picker = await bot_message(fake, 7, replying_to(photo))
            first_page = buttons(picker)
            pages = [first_page]
            while f"photo-page:{len(pages)}" in pages[-1]:  # "More ›" to the last page
                fake.press_button(chat, alice, picker, f"photo-page:{len(pages)}")
                await fake.wait_for(lambda: buttons(fake.messages_to(7)[-1]) != pages[-1])
                pages.append(buttons(fake.messages_to(7)[-1]))
            for back in reversed(range(len(pages) - 1)):  # "‹ Back" to the first page
                fake.press_button(chat, alice, picker, f"photo-page:{back}")
                await fake.wait_for(lambda: buttons(fake.messages_to(7)[-1]) == pages[back])
            fake.press_button(chat, alice, picker, "photo:bounce")
            meme = await bot_message(fake, 7, lambda m: "animation" in m)
            status = await bot_message(fake, 7, with_text("done"))
            edits = [s["params"]["text"] for s in sent(fake, "editMessageText", 7)
                     if s["params"]["message_id"] == status["message_id"]]
            calls = [s["method"] for s in fake.sent]
            usage = await count_rows(services, UsageEvent)

            fake.press_button(chat, alice, picker, "photo:bounce")  # the same meme again: its file_id
            await fake.wait_for(lambda: len(sent(fake, "sendAnimation")) == 2)
            usage_after_repeat = await count_rows(services, UsageEvent)
            return (welcome, picker, pages, meme, status, edits, calls, usage, fake.commands,
                    sent(fake, "sendAnimation"), sent(fake, "sendChatAction"), usage_after_repeat)

    (welcome, picker, pages, meme, status, edits, calls, usage, commands, animations,
     actions, usage_after_repeat) = asyncio.run(main())

    assert "only swap your own face" in welcome["text"].lower() and "forget" in welcome["text"].lower()
    registered = [c["command"] for cs in commands.values() for c in cs]
    assert {"start", "help", "templates", "face", "addtemplate", "forget"} <= set(registered)

    # The keyboard: every button fits Telegram's 64 bytes; every built-in, once, over three pages or more.
    every = [data for page in pages for data in page]
    assert all(len(data.encode()) <= 64 for data in every)
    picks = [d for d in every if not d.startswith("photo-page:")]
    builtins = len(list(builtin_templates_dir().glob("*/manifest.json")))
    assert builtins >= 20 and len(picks) == len(set(picks)) == builtins and "photo:bounce" in picks
    assert len(pages) >= 3 and "photo-page:1" in pages[0] and "photo-page:0" in pages[1]

    # The tap is answered before anything else happens, then a status message moves to done.
    assert calls.index("answerCallbackQuery") < calls.index("sendAnimation")
    assert edits[-1] == "✅ Done!" and any("Swapping faces" in e for e in edits), edits
    assert status["text"] == "✅ Done!"
    assert any(a["params"]["action"] == "upload_video" for a in actions)
    assert usage == 1

    # The meme: an MP4 animation of every template frame, with the selfie's face in it.
    data = meme["animation_bytes"]
    assert data[4:8] == b"ftyp" and meme["animation"]["mime_type"] == "video/mp4"
    carries_face(decode_mp4(data), selfie_jpeg, template_frames(library, "bounce"))

    # Picking the same template for the same photo re-sends the cached file: no new swap.
    assert isinstance(animations[1]["params"]["animation"], str) and not animations[1]["files"]
    assert animations[1]["params"]["animation"] == meme["animation"]["file_id"]
    # Both carry the Report button of the job that made the meme.
    reports = [re.findall(r"report:[0-9a-f]{32}", str(a["params"]["reply_markup"])) for a in animations]
    assert reports[0] == reports[1] and len(reports[0]) == 1 and buttons(meme) == reports[0]
    assert usage_after_repeat == 1


def test_a_photo_without_a_face_or_turned_away_gets_one_line_and_no_templates(telegram_bot, faceless_jpeg,
                                                                             turned_selfie_jpeg):
    async def main():
        async with telegram_bot() as (fake, services):
            bob = fake.user(8, "Bob")
            chat = fake.private_chat(bob)
            coffee = fake.send_photo(chat, bob, faceless_jpeg)
            no_face = await bot_message(fake, 8, replying_to(coffee))
            turned = fake.send_photo(chat, bob, turned_selfie_jpeg)
            turned_away = await bot_message(fake, 8, replying_to(turned))
            return no_face, turned_away, bot_messages(fake, 8)

    no_face, turned_away, everything = asyncio.run(main())
    assert no_face["text"].startswith("⚠️ No face found in the photo") and "\n" not in no_face["text"]
    assert turned_away["text"] == ("⚠️ The face in the photo is turned too far to the side; please send a "
                                   "front-facing photo.")
    assert len(everything) == 2 and not any("reply_markup" in m for m in everything)  # no template offered


def test_a_document_that_is_not_an_image_and_one_too_big_to_fetch(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            carol = fake.user(9, "Carol")
            chat = fake.private_chat(carol)
            pdf = fake.send_document(chat, carol, b"%PDF-1.4\n" + bytes(2000), "notes.pdf", "application/pdf")
            not_image = await bot_message(fake, 9, replying_to(pdf))
            big = fake.send_document(chat, carol, b"\xff\xd8\xff" + bytes(21 * 1024 * 1024), "huge.jpg", "image/jpeg")
            too_big = await bot_message(fake, 9, replying_to(big))
            return not_image, too_big, [r["method"] for r in fake.requests]

    not_image, too_big, methods = asyncio.run(main())
    assert not_image["text"] == "That file isn't an image. Send me a selfie as a photo (or as a JPEG or PNG file)."
    assert too_big["text"] == ("⚠️ That file is 21.0 MB; I can take files up to 20.0 MB from Telegram. "
                               "Send a smaller one.")
    assert "getFile" not in methods  # refused from the size Telegram announced, nothing downloaded


def test_in_a_group_only_admins_add_templates_and_everyone_sees_them(telegram_bot, template_media):
    clip = template_media.read_bytes()

    async def main():
        async with telegram_bot() as (fake, services):
            admin, member = fake.user(10, "Ada"), fake.user(11, "Max")
            group = fake.group_chat(-100500, "Meme lovers")
            fake.set_admins(-100500, [10])
            attempt = fake.send_animation(group, member, clip, caption="/addtemplate party")
            refused = await bot_message(fake, -100500, replying_to(attempt))
            rows_after_refusal = await count_rows(services, CustomTemplate)
            downloads_after_refusal = [r for r in fake.requests if r["method"] == "getFile"]
            added = fake.send_animation(group, admin, clip, caption="/addtemplate party")
            status = await bot_message(fake, -100500, lambda m: replying_to(added)(m) and "✅" in m["text"])
            listing_request = fake.send_text(group, member, "/templates")
            listing = await bot_message(fake, -100500, replying_to(listing_request))
            return refused, rows_after_refusal, downloads_after_refusal, status, listing

    refused, rows_after_refusal, downloads, status, listing = asyncio.run(main())
    assert refused["text"] == "⚠️ Only an admin of this group can add templates here."
    assert rows_after_refusal == 0 and downloads == []
    assert status["text"].startswith("✅ Added “party” for this chat")
    assert "party" in listing["caption"] and "face:party" in buttons(listing)


def test_forget_then_a_pick_asks_for_a_selfie_again(telegram_bot, selfie_jpeg):
    async def main():
        async with telegram_bot() as (fake, services):
            dan = fake.user(12, "Dan")
            chat = fake.private_chat(dan)
            photo = fake.send_photo(chat, dan, selfie_jpeg)
            await bot_message(fake, 12, replying_to(photo))  # the picker for the photo
            fake.send_text(chat, dan, "/face", reply_to=photo)
            await bot_message(fake, 12, with_text("saved your face"))
            faces_saved = await count_rows(services, SavedFace)
            listing_request = fake.send_text(chat, dan, "/templates")
            listing = await bot_message(fake, 12, replying_to(listing_request))
            fake.send_text(chat, dan, "/forget")
            erased = await bot_message(fake, 12, with_text("erased"))
            fake.press_button(chat, dan, listing, "face:bounce")
            asked = await bot_message(fake, 12, with_text("selfie first"))
            return faces_saved, listing, erased, asked, await count_rows(services, SavedFace), \
                sent(fake, "sendAnimation")

    faces_saved, listing, erased, asked, faces_left, animations = asyncio.run(main())
    assert faces_saved == 1 and "saved face" in listing["caption"].lower()
    assert erased["text"].startswith("Done: I erased your saved faces (1)")
    assert asked["text"] == "⚠️ Send me a selfie first (or save one with /face), then pick a template."
    assert faces_left == 0 and animations == []


def test_two_users_at_once_each_get_their_meme_while_a_third_is_answered(telegram_bot, selfie_jpeg,
                                                                          second_selfie_jpeg):
    async def main():
        async with telegram_bot(job_workers=1) as (fake, services):
            users = [fake.user(20, "Eve"), fake.user(21, "Finn")]
            chats = [fake.private_chat(u) for u in users]
            photos = [fake.send_photo(c, u, s) for c, u, s in zip(chats, users, (selfie_jpeg, second_selfie_jpeg))]
            pickers = [await bot_message(fake, u["id"], replying_to(p)) for u, p in zip(users, photos)]
            for chat, user, picker in zip(chats, users, pickers):
                fake.press_button(chat, user, picker, "photo:deep-fried")
            # Both taps are in: each has its status message (either job may be the one that waits).
            await fake.wait_for(lambda: all(any(replying_to(picker)(m) for m in fake.messages_to(u["id"]))
                                            for u, picker in zip(users, pickers)), TIMEOUT)
            grace = fake.user(22, "Grace")
            fake.send_text(fake.private_chat(grace), grace, "/help")
            await bot_message(fake, 22, with_text("send me a selfie"))
            answered_help_after = len(sent(fake, "sendAnimation"))
            memes = [await bot_message(fake, u["id"], lambda m: "animation" in m) for u in users]
            return answered_help_after, memes

    answered_help_after, memes = asyncio.run(main())
    assert answered_help_after < 2  # /help did not wait for the swaps
    assert all(m["animation_bytes"][4:8] == b"ftyp" for m in memes)
    assert memes[0]["animation_bytes"] != memes[1]["animation_bytes"]


def test_a_flood_wait_from_telegram_is_waited_out_and_the_meme_arrives_once(telegram_bot, selfie_jpeg):
    async def main():
        async with telegram_bot() as (fake, services):
            hana = fake.user(30, "Hana")
            chat = fake.private_chat(hana)
            photo = fake.send_photo(chat, hana, selfie_jpeg)
            picker = await bot_message(fake, 30, replying_to(photo))
            fake.fail_next("sendAnimation", 429, retry_after=1, description="Too Many Requests: retry after 1")
            fake.press_button(chat, hana, picker, "photo:bounce")
            await bot_message(fake, 30, with_text("done"))
            return [r for r in fake.requests if r["method"] == "sendAnimation"], sent(fake, "sendAnimation")

    attempts, animations = asyncio.run(main())
    assert [a["status"] for a in attempts] == [429, 200]
    assert len(animations) == 1


def test_too_many_swaps_in_a_minute_get_a_friendly_line(telegram_bot, selfie_jpeg):
    async def main():
        async with telegram_bot(per_user_burst=1, per_user_jobs_per_minute=1) as (fake, services):
            ivy = fake.user(40, "Ivy")
            chat = fake.private_chat(ivy)
            photo = fake.send_photo(chat, ivy, selfie_jpeg)
            picker = await bot_message(fake, 40, replying_to(photo))
            fake.press_button(chat, ivy, picker, "photo:bounce")
            fake.press_button(chat, ivy, picker, "photo:deep-fried")
            slow_down = await bot_message(fake, 40, with_text("easy there"))
            await bot_message(fake, 40, lambda m: "animation" in m)
            return slow_down, await count_rows(services, UsageEvent)

    slow_down, usage = asyncio.run(main())
    assert slow_down["text"].startswith("⚠️ Easy there! Too many swaps in a short time, try again in about")
    assert usage == 1  # the refused swap was not counted


def test_a_result_nobody_here_followed_is_posted_where_the_job_said(telegram_bot, selfie_jpeg):
    """After a restart the engine hands over finals of jobs started by the previous run; the
    adapter posts them by the job's `reply_to` and deletes the result blob."""
    async def main():
        async with telegram_bot() as (fake, services):
            kim = fake.user(50, "Kim")
            chat = fake.private_chat(kim)
            status = await fake_status(fake, chat, kim)
            ref = services.blobs.put(b"\x00\x00\x00\x18ftypisom" + bytes(64), 60)
            job = SwapJob(job_id="orphan-1", user_key="telegram:50", selfie_ref="gone", template="bounce",
                          format="mp4", reply_to=reply_address(50, status["message_id"]))
            delivery = MemeDelivery(services, SentMemes())
            bot = fake_bot(fake)
            async with bot:
                await delivery.deliver_unfollowed(bot, job, Succeeded(result_ref=ref, mime="video/mp4", size=82))
                failed = job.model_copy(update={"job_id": "orphan-2"})
                await delivery.deliver_unfollowed(bot, failed, Failed(code="deadline", message="too slow",
                                                                      retryable=True))
            return fake.messages_to(50), ref, services

    messages, ref, services = asyncio.run(main())
    assert any("animation" in m and m["reply_to_message"]["message_id"] == messages[0]["message_id"]
               for m in messages)
    assert messages[0]["text"] == "⚠️ Too slow. You can try again."
    with pytest.raises(BlobNotFoundError):
        services.blobs.get(ref)


async def fake_status(fake: FakeTelegram, chat: dict, user: dict) -> dict:
    """A status message of the bot's, as a job started before a restart left it."""
    fake.send_text(chat, user, "/help")
    return await bot_message(fake, chat["id"], with_text("send me a selfie"))


def fake_bot(fake: FakeTelegram) -> Bot:
    return Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)
