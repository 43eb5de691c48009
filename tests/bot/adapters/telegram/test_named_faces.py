"""Several named faces per person in Telegram: /face NAME saves one, /faces lists them,
/removeface NAME deletes one, and /swap TEMPLATE FACES puts them on a template's faces."""

from __future__ import annotations

import asyncio

from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.store.models import SavedFace, UsageEvent
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
from tests.bot.adapters.telegram.test_conversation import (
    bot_message,
    count_rows,
    decode_mp4,
    replying_to,
    with_text,
)


def test_two_named_faces_go_onto_a_two_face_template_in_order(telegram_bot, selfie_jpeg, friend_selfie_jpeg,
                                                              wears_faces, library, logged_errors):
    async def main():
        async with telegram_bot() as (fake, services):
            mia = fake.user(80, "Mia")
            chat = fake.private_chat(mia)
            fake.send_photo(chat, mia, selfie_jpeg, caption="/face")
            await bot_message(fake, 80, with_text("saved your face as “me”"))
            fake.send_photo(chat, mia, friend_selfie_jpeg, caption="/face Ana")
            await bot_message(fake, 80, with_text("saved your face as “ana”"))
            listing = fake.send_text(chat, mia, "/faces")
            listed = await bot_message(fake, 80, replying_to(listing))

            swap = fake.send_text(chat, mia, "/swap duo me,ana")
            await bot_message(fake, 80, lambda m: replying_to(swap)(m) and "done" in m["text"].lower())
            meme = await bot_message(fake, 80, lambda m: "animation" in m)

            removal = fake.send_text(chat, mia, "/removeface ana")
            removed = await bot_message(fake, 80, replying_to(removal))
            again = fake.send_text(chat, mia, "/swap duo _,ana")
            unknown = await bot_message(fake, 80, lambda m: replying_to(again)(m) and "⚠️" in m["text"])
            bad = fake.send_text(chat, mia, "/face " + "Z" * 300, reply_to=listing)
            bad_name = await bot_message(fake, 80, replying_to(bad))
            too_many = fake.send_text(chat, mia, "/swap duo me,_,me")
            refused_map = await bot_message(fake, 80, lambda m: replying_to(too_many)(m) and "⚠️" in m["text"])
            return listed, meme, removed, unknown, bad_name, refused_map, await count_rows(services, SavedFace)

    listed, meme, removed, unknown, bad_name, refused_map, rows = asyncio.run(main())
    assert listed["text"].startswith("Your saved faces (2 of 5): ana, me.")
    wears_faces(decode_mp4(meme["animation_bytes"]), library.compile(library.get("duo")),
                [selfie_jpeg, friend_selfie_jpeg])
    assert removed["text"] == "Deleted your saved face “ana”."
    assert unknown["text"] == "⚠️ You have no saved face named 'ana'; yours: me."
    assert bad_name["text"].startswith("⚠️ Invalid face name '" + "Z" * 40 + "…'") and len(bad_name["text"]) < 200
    assert refused_map["text"] == "⚠️ This template has 2 faces and the face map names 3; use _ for a face to keep."
    assert rows == 1
    assert logged_errors() == []


def test_a_protected_face_anywhere_in_a_face_map_is_refused(telegram_bot, selfie_jpeg, friend_selfie_jpeg,
                                                            analyser):
    """Every face a map names meets the protected list of the place where the swap happens,
    not only the first."""
    group_id = -100710

    async def main():
        async with telegram_bot() as (fake, services):
            mia = fake.user(81, "Mia")
            private = fake.private_chat(mia)
            fake.send_photo(private, mia, selfie_jpeg, caption="/face")
            await bot_message(fake, 81, with_text("saved your face as “me”"))
            fake.send_photo(private, mia, friend_selfie_jpeg, caption="/face ana")
            await bot_message(fake, 81, with_text("saved your face as “ana”"))
            admin = Requester("telegram", "9", Scope("chat", "telegram", str(group_id)), is_scope_admin=True)
            protected = ProtectedFaceList(services.database, DlibFaceDescriptor(), analyser)
            await protected.add(admin, friend_selfie_jpeg, "ana", admin.scope)

            group = fake.group_chat(group_id, "Memes")
            request = fake.send_text(group, mia, "/swap duo me,ana")
            refused = await bot_message(fake, group_id, lambda m: replying_to(request)(m) and "⚠️" in m["text"])
            return refused, await count_rows(services, UsageEvent)

    refused, usage = asyncio.run(main())
    assert "can't be used" in refused["text"] and "\n" not in refused["text"]
    assert usage == 0
