"""Protected faces are checked where and when a swap happens, whatever was checked before."""

from __future__ import annotations

import asyncio

from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
from tests.bot.adapters.telegram.test_conversation import bot_message, buttons, replying_to, sent, with_text

GROUP = -100700


def test_a_face_saved_in_private_is_refused_in_a_group_that_protects_it(telegram_bot, selfie_jpeg, analyser):
    async def main():
        async with telegram_bot() as (fake, services):
            alice, _admin = fake.user(7, "Alice"), fake.user(8, "Ada")
            private = fake.private_chat(alice)
            fake.send_photo(private, alice, selfie_jpeg, caption="/face")
            await bot_message(fake, 7, with_text("saved your face"))
            # The group's admin protects Alice's face in the group (her saved face stays hers).
            in_group = Requester("telegram", "8", Scope("chat", "telegram", str(GROUP)), is_scope_admin=True)
            protected = ProtectedFaceList(services.database, DlibFaceDescriptor(), analyser)
            await protected.add(in_group, selfie_jpeg, "alice", in_group.scope)

            group = fake.group_chat(GROUP, "Memes")
            request = fake.send_text(group, alice, "/templates")
            listing = await bot_message(fake, GROUP, replying_to(request))
            fake.press_button(group, alice, listing, "face:bounce")
            refused = await bot_message(fake, GROUP, with_text("can't be used"))
            # The same saved face still works in her private chat.
            request = fake.send_text(private, alice, "/templates")
            own_listing = await bot_message(fake, 7, replying_to(request))
            fake.press_button(private, alice, own_listing, "face:bounce")
            done = await bot_message(fake, 7, with_text("✅ Done"))
            return "face:bounce" in buttons(listing), refused, done, sent(fake, "sendAnimation")

    offered, refused, done, animations = asyncio.run(main())
    assert offered
    assert refused["text"] == "⚠️ This face can't be used in swaps here."
    assert [a["chat_id"] for a in animations] == [7]  # a meme in the private chat, none in the group


def test_a_meme_is_not_re_sent_once_its_template_face_is_protected_here(telegram_bot, selfie_jpeg, astronaut,
                                                                       analyser):
    """The "Here it is again!" shortcut re-sends a meme only where it was made, and only while
    the template's faces are allowed there."""
    from tests.bot.adapters.conftest import jpeg

    async def main():
        async with telegram_bot() as (fake, services):
            alice = fake.user(7, "Alice")
            group = fake.group_chat(GROUP, "Memes")
            photo = fake.send_photo(group, alice, selfie_jpeg, caption="/swap")
            picker = await bot_message(fake, GROUP, replying_to(photo))
            fake.press_button(group, alice, picker, "photo:bounce")
            await bot_message(fake, GROUP, with_text("✅ Done"))
            # The group protects the face the built-in templates show (the astronaut).
            in_group = Requester("telegram", "8", Scope("chat", "telegram", str(GROUP)), is_scope_admin=True)
            protected = ProtectedFaceList(services.database, DlibFaceDescriptor(), analyser)
            await protected.add(in_group, jpeg(astronaut), "astronaut", in_group.scope)
            again = fake.press_button(group, alice, picker, "photo:bounce")
            await fake.wait_for(lambda: any(s["method"] == "answerCallbackQuery"
                                            and s["params"]["callback_query_id"] == again["id"] for s in fake.sent))
            answer = [s["params"] for s in fake.sent if s["method"] == "answerCallbackQuery"
                      and s["params"]["callback_query_id"] == again["id"]][0]
            return answer, sent(fake, "sendAnimation")

    answer, animations = asyncio.run(main())
    assert answer.get("text") == "⚠️ This template shows a face that can't be used in swaps here."
    assert len(animations) == 1  # the first meme only; nothing re-sent
