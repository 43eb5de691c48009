"""Hostile template uploads through the real python-telegram-bot against the loopback Bot
API: refused quickly with one line, stopped at their deadline, and screened over the frames
actually decoded, whatever the file says about itself."""

from __future__ import annotations

import asyncio
import time

import cv2
import pytest

from memeswap.bot.core.requesters import GLOBAL, Requester
from memeswap.bot.store.models import CustomTemplate
from memeswap.inference.samples import crop_face
from tests.bot.adapters.telegram.test_conversation import bot_message, count_rows, replying_to
from tests.hostile_media import decode_cost_gif, late_face_clip, long_video

OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)


def answered(upload: dict):
    """The status message of an /addtemplate once it says how it ended."""
    return lambda m: replying_to(upload)(m) and (m.get("text") or "")[:1] in ("⚠", "✅")


def stored_templates(services) -> list[str]:
    """Template folders in the data folder, half-added ones included."""
    folder = services.templates.library.custom_dir
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("manifest.json")) + sorted(
        p.name for p in folder.rglob(".adding-*"))


def test_the_decode_cost_gif_is_refused_in_seconds_with_one_line(telegram_bot):
    gif = decode_cost_gif()

    async def main():
        async with telegram_bot() as (fake, services):
            mallory = fake.user(60, "Mallory")
            started = time.monotonic()
            upload = fake.send_document(fake.private_chat(mallory), mallory, gif, "party.gif", "image/gif",
                                        caption="/addtemplate party")
            status = await bot_message(fake, 60, answered(upload), timeout=30)
            return status, time.monotonic() - started, await count_rows(services, CustomTemplate), \
                stored_templates(services)

    status, elapsed, rows, stored = asyncio.run(main())
    assert status["text"] == ("⚠️ The template is too big to decode: 300 frames of 6000x6000 pixels; the limit is "
                              "650 megapixels in all, so make it smaller or shorter.")
    assert elapsed < 5, elapsed
    assert rows == 0 and stored == []


def test_work_past_its_deadline_ends_in_one_line_and_keeps_nothing(telegram_bot, template_media):
    clip = template_media.read_bytes()

    async def main():
        async with telegram_bot(heavy_work_deadline_s=0.05) as (fake, services):
            trent = fake.user(61, "Trent")
            upload = fake.send_animation(fake.private_chat(trent), trent, clip, caption="/addtemplate slow")
            status = await bot_message(fake, 61, answered(upload))
            assert status["text"].startswith("⚠️"), status["text"]
            await fake.wait_for(lambda: stored_templates(services) == [], 10)  # the work stopped and cleaned up
            fake.send_text(fake.private_chat(trent), trent, "/help")
            await bot_message(fake, 61, lambda m: "send me a selfie" in (m.get("text") or "").lower())
            return status, await count_rows(services, CustomTemplate)

    status, rows = asyncio.run(main())
    assert status["text"] == "⚠️ That took longer than 0.05 s and was stopped; try a shorter or smaller file."
    assert rows == 0


@pytest.mark.parametrize("lie", ["title tag", "patched duration"])
def test_a_protected_face_late_in_a_clip_that_says_it_is_short_is_refused(telegram_bot, group, astronaut, tmp_path,
                                                                          lie):
    """A stranger in the first half, a protected face in the second half of a clip that
    announces half a second (`late_face_clip`)."""
    image, faces = group
    clip = late_face_clip(crop_face(image, faces[2]), astronaut, tmp_path / "clip.mp4", lie)
    portrait = cv2.imencode(".png", astronaut[:, :, ::-1])[1].tobytes()

    async def main():
        async with telegram_bot() as (fake, services):
            await services.templates.protected.add(OPERATOR, portrait, "nasa portrait")
            eve = fake.user(62, "Eve")
            upload = fake.send_animation(fake.private_chat(eve), eve, clip, caption="/addtemplate sneaky")
            status = await bot_message(fake, 62, answered(upload), timeout=120)
            return status, await count_rows(services, CustomTemplate), stored_templates(services)

    status, rows, stored = asyncio.run(main())
    assert status["text"] == "⚠️ This template shows a face that can't be used in swaps here."
    assert rows == 0 and stored == []


def test_many_adds_at_once_each_get_their_own_line(telegram_bot, tmp_path):
    """18 /addtemplate at once, more than the store's pool of connections: each status
    message ends with why that upload was refused (none with an internal error, none left
    at "Adding the template…")."""
    video = long_video(tmp_path / "long.mp4").read_bytes()

    async def main():
        async with telegram_bot() as (fake, services):
            people = [fake.user(70 + i, f"Person {i}") for i in range(6)]
            uploads = [fake.send_animation(fake.private_chat(person), person, video, caption="/addtemplate long",
                                           file_name="long.mp4") for person in people for _ in range(3)]
            statuses = [await bot_message(fake, upload["chat"]["id"], answered(upload), timeout=30)
                        for upload in uploads]
            return [status["text"] for status in statuses]

    lines = asyncio.run(main())
    assert lines == ["⚠️ The template is too long: more than 300 frames / 15 s; trim it and try again."] * 18


def test_one_person_sending_many_heavy_files_cannot_hold_up_someone_elses_selfie(telegram_bot, selfie_jpeg):
    """Mallory sends five slow GIFs (each decodes until its 3 s deadline); Bea's selfie still
    gets its templates before Mallory's first GIF is even answered: one person's pieces run
    one at a time, and beyond three waiting the next is refused at once."""
    slow = decode_cost_gif(canvas=1400)  # 588 megapixels: within the budget, seconds to decode

    async def main():
        async with telegram_bot(heavy_work_deadline_s=3) as (fake, services):
            mallory, bea = fake.user(60, "Mallory"), fake.user(61, "Bea")
            attack = fake.private_chat(mallory)
            uploads = [fake.send_document(attack, mallory, slow, f"slow{i}.gif", "image/gif",
                                          caption=f"/addtemplate slow{i}") for i in range(5)]
            await asyncio.sleep(0.5)  # Mallory's files are in before Bea's photo
            photo = fake.send_photo(fake.private_chat(bea), bea, selfie_jpeg)
            picker = await bot_message(fake, 61, replying_to(photo), timeout=60)
            answers_before_bea = [m["text"] for m in fake.messages_to(60) if m.get("text", "")[:1] == "⚠"]
            finals = [await bot_message(fake, 60, answered(upload), timeout=60) for upload in uploads]
            return picker, answers_before_bea, [f["text"] for f in finals]

    picker, answers_before_bea, finals = asyncio.run(main())
    assert picker["text"] == "Got your face! Now pick a template:"
    refused_at_once = "⚠️ Easy there! I'm still working on your last files; send this one again when they're done."
    assert answers_before_bea == [refused_at_once, refused_at_once]  # none of her slow GIFs had ended yet
    assert finals.count(refused_at_once) == 2
    assert all(f.startswith("⚠️ That took longer than 3 s") for f in finals if f != refused_at_once), finals
