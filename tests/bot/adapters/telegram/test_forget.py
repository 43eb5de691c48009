"""/forget on Telegram while the person's swap is on its way: the swap stops, queued or
running, their selfie goes, their status message says why, and no meme follows."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.conftest import JobGate
from tests.bot.adapters.telegram.test_conversation import TIMEOUT, bot_message, replying_to, sent, with_text

FORGOTTEN_LINE = "⚠️ Cancelled because you asked me to forget you."


def test_forget_stops_a_queued_and_a_running_swap_and_no_meme_follows(telegram_bot, selfie_jpeg,
                                                                      second_selfie_jpeg, tmp_path):
    blobs = tmp_path / "data" / "blobs"

    async def main():
        async with telegram_bot(job_workers=1) as (fake, services):
            eve, finn = fake.user(60, "Eve"), fake.user(61, "Finn")
            chats = [fake.private_chat(eve), fake.private_chat(finn)]
            photos = [fake.send_photo(chats[0], eve, selfie_jpeg), fake.send_photo(chats[1], finn, second_selfie_jpeg)]
            pickers = [await bot_message(fake, user["id"], replying_to(photo))
                       for user, photo in zip((eve, finn), photos)]
            gate = JobGate(services.engine)  # Eve's swap runs until the test says
            fake.press_button(chats[0], eve, pickers[0], "photo:dramatic-zoom")
            await bot_message(fake, 60, with_text("swapping faces"))
            fake.press_button(chats[1], finn, pickers[1], "photo:deep-fried")
            await bot_message(fake, 61, with_text("in the queue"))  # one worker: Finn waits behind Eve
            selfies_while_queued = sum(path.read_bytes() in (selfie_jpeg, second_selfie_jpeg)
                                       for path in blobs.iterdir())
            # Finn asks while his swap waits, Eve while hers runs.
            fake.send_text(chats[1], finn, "/forget")
            finn_reply = await bot_message(fake, 61, with_text("erased"))
            fake.send_text(chats[0], eve, "/forget")
            eve_reply = await bot_message(fake, 60, with_text("erased"))
            statuses = [await bot_message(fake, user_id, lambda m: m.get("text") == FORGOTTEN_LINE)
                        for user_id in (60, 61)]
            gate.open()
            await fake.wait_for(lambda: services.engine.running == 0 and services.engine.queue_depth == 0, TIMEOUT)
            await asyncio.sleep(0.5)  # room for a meme that should not come
            return selfies_while_queued, finn_reply, eve_reply, statuses, sent(fake, "sendAnimation"), \
                sorted(path.name for path in blobs.iterdir())

    selfies_while_queued, finn_reply, eve_reply, statuses, animations, left = asyncio.run(main())
    assert selfies_while_queued == 2
    for reply in (finn_reply, eve_reply):
        assert reply["text"].startswith("Done: I stopped your swaps in progress (1) and erased your saved faces (0)")
    assert [s["text"] for s in statuses] == [FORGOTTEN_LINE, FORGOTTEN_LINE]
    assert animations == []
    assert left == []  # both selfies gone, and no meme was kept


def test_a_forget_during_a_face_save_or_a_swaps_checks_wins(telegram_bot, selfie_jpeg, tmp_path):
    """/forget while the face of a /face photo is still being analysed, or while a tap's
    selfie is still being checked: nothing is saved, nothing is queued, and each says why."""
    from memeswap.bot.store.models import SavedFace
    from tests.bot.adapters.conftest import FaceCheckGate
    from tests.bot.adapters.telegram.test_conversation import count_rows

    def forget_replies(fake) -> int:
        return sum(1 for m in fake.messages_to(70) if (m.get("text") or "").startswith(("Done: I", "I had nothing")))

    async def forget_while_held(fake, services, start) -> None:
        gate = FaceCheckGate(services.faces)
        before = forget_replies(fake)
        start()
        await asyncio.to_thread(gate.held.wait, TIMEOUT)  # the analysis has begun
        fake.send_text(fake.private_chat(fake.user(70, "Bea")), fake.user(70, "Bea"), "/forget")
        await fake.wait_for(lambda: forget_replies(fake) > before, TIMEOUT)
        gate.open()

    async def main():
        async with telegram_bot() as (fake, services):
            bea = fake.user(70, "Bea")
            chat = fake.private_chat(bea)
            photo = fake.send_photo(chat, bea, selfie_jpeg)
            picker = await bot_message(fake, 70, replying_to(photo))
            saving: list[dict] = []
            await forget_while_held(fake, services, lambda: saving.append(
                fake.send_photo(chat, bea, selfie_jpeg, caption="/face")))
            saved = await bot_message(fake, 70, lambda m: replying_to(saving[0])(m) and "forget" in m["text"])
            await forget_while_held(fake, services, lambda: fake.press_button(chat, bea, picker, "photo:bounce"))
            swap = await bot_message(fake, 70, lambda m: replying_to(picker)(m) and "forget" in m["text"])
            await asyncio.sleep(0.5)  # room for a job or a meme that should not come
            return saved, swap, await count_rows(services, SavedFace), services.engine.queue_depth, \
                sent(fake, "sendAnimation"), sorted(p.name for p in (tmp_path / "data" / "blobs").iterdir())

    saved, swap, faces, queued, animations, blobs = asyncio.run(main())
    assert saved["text"] == swap["text"] == FORGOTTEN_LINE
    assert faces == 0 and queued == 0 and animations == [] and blobs == []
