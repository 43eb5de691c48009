"""`/format` on Telegram: MP4 (the default) or GIF, the two that Telegram plays inline,
remembered per person until /forget; the meme arrives in that format, and an MP4 that keeps
a template's sound goes as a video, since sendAnimation is for files without sound."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from memeswap.inference.media import ffmpeg
from memeswap.inference.media.sound import mp4_has_sound
from tests.bot.adapters.telegram.test_conversation import bot_message, buttons, replying_to, sent, with_text

TIMEOUT = 90.0


@pytest.fixture(scope="module")
def toned_clip(template_media: Path, tmp_path_factory) -> bytes:
    """The short clip users upload in these tests, with a sine tone as its sound."""
    path = tmp_path_factory.mktemp("toned") / "toned.mp4"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-i", str(template_media),
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-map", "0:v:0", "-map", "1:a:0",
                    "-c:v", "copy", "-c:a", "aac", "-shortest", str(path)], check=True, timeout=120)
    return path.read_bytes()


def test_format_gif_is_remembered_and_the_meme_comes_as_a_gif_until_forget(telegram_bot, selfie_jpeg):
    async def main():
        async with telegram_bot() as (fake, services):
            ann = fake.user(21, "Ann")
            chat = fake.private_chat(ann)
            asked = fake.send_text(chat, ann, "/format")
            menu = await bot_message(fake, 21, replying_to(asked))
            menu_buttons = [b["text"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
            fake.press_button(chat, ann, menu, "format:gif")
            ticked = await bot_message(fake, 21, lambda m: m["message_id"] == menu["message_id"] and
                                       "GIF." in (m.get("text") or ""))
            photo = fake.send_photo(chat, ann, selfie_jpeg)
            picker = await bot_message(fake, 21, replying_to(photo))
            fake.press_button(chat, ann, picker, "photo:bounce")
            meme = await bot_message(fake, 21, lambda m: "animation" in m, TIMEOUT)
            fake.send_text(chat, ann, "/forget")
            await bot_message(fake, 21, with_text("erased"))
            again = fake.send_text(chat, ann, "/format")
            after_forget = await bot_message(fake, 21, replying_to(again))
            return menu, menu_buttons, ticked, meme, sent(fake, "sendAnimation"), after_forget

    menu, menu_buttons, ticked, meme, animations, after_forget = asyncio.run(main())
    assert menu["text"].startswith("Your memes come as MP4") and buttons(menu) == ["format:mp4", "format:gif"]
    assert menu_buttons == ["✓ MP4", "GIF"]
    assert [b["text"] for row in ticked["reply_markup"]["inline_keyboard"] for b in row] == ["MP4", "✓ GIF"]
    assert len(animations) == 1
    assert meme["animation"]["file_name"] == "meme.gif" and meme["animation_bytes"][:6] == b"GIF89a"
    assert after_forget["text"].startswith("Your memes come as MP4")


def test_a_button_for_no_format_is_answered_and_changes_nothing(telegram_bot):
    async def main():
        async with telegram_bot() as (fake, services):
            bo = fake.user(22, "Bo")
            chat = fake.private_chat(bo)
            asked = fake.send_text(chat, bo, "/format")
            menu = await bot_message(fake, 22, replying_to(asked))
            query = fake.send_callback(chat, bo, menu, "format:webp")
            await fake.wait_for(lambda: query["id"] in fake.answered_callbacks())
            again = fake.send_text(chat, bo, "/format")
            return await bot_message(fake, 22, replying_to(again))

    assert asyncio.run(main())["text"].startswith("Your memes come as MP4")


def test_a_template_with_sound_comes_as_a_video_with_its_sound(telegram_bot, selfie_jpeg, toned_clip):
    async def main():
        async with telegram_bot() as (fake, services):
            cy = fake.user(23, "Cy")
            chat = fake.private_chat(cy)
            added = fake.send_animation(chat, cy, toned_clip, caption="/addtemplate toned")
            await bot_message(fake, 23, lambda m: replying_to(added)(m) and "✅" in m["text"], TIMEOUT)
            photo = fake.send_photo(chat, cy, selfie_jpeg)
            picker = await bot_message(fake, 23, replying_to(photo))
            fake.press_button(chat, cy, picker, "photo:toned")
            video = await bot_message(fake, 23, lambda m: "video" in m, TIMEOUT)
            return video, sent(fake, "sendVideo"), sent(fake, "sendAnimation")

    video, videos, animations = asyncio.run(main())
    assert len(videos) == 1 and animations == []
    assert video["video"]["file_name"] == "meme.mp4" and video["video_bytes"][4:8] == b"ftyp"
    assert mp4_has_sound(video["video_bytes"])
