"""/templates on Telegram: a photo of the preview sheet, numbered in the keyboard's order and
sent with the keyboard; rendered once per set of templates (then from the cache)."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from memeswap.inference.templates.preview_sheet import SheetLayout
from tests.bot.adapters.telegram.test_conversation import bot_message, buttons, replying_to, sent, with_text

LAYOUT = SheetLayout()


def size_of(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def test_templates_sends_the_sheet_with_the_keyboard_and_caches_it(telegram_bot, template_media, library):
    clip = template_media.read_bytes()
    builtins = len(library.templates())

    async def main():
        async with telegram_bot() as (fake, services):
            admin = fake.user(10, "Ada")
            group = fake.group_chat(-100500, "Meme lovers")
            fake.set_admins(-100500, [10])
            added = fake.send_animation(group, admin, clip, caption="/addtemplate party")
            await bot_message(fake, -100500, lambda m: replying_to(added)(m) and "✅" in (m.get("text") or ""))
            first = await bot_message(fake, -100500, replying_to(fake.send_text(group, admin, "/templates")))
            [cached] = services.settings.previews_dir.glob("telegram-chat--100500/*.jpg")  # the chat's own shown
            marker = io.BytesIO()
            Image.new("RGB", (64, 48), (255, 0, 0)).save(marker, "JPEG")
            cached.write_bytes(marker.getvalue())  # what a second /templates sends if it reads the cache
            second = await bot_message(fake, -100500, replying_to(fake.send_text(group, admin, "/templates")))
            fake.send_text(group, admin, "/removetemplate party")
            await bot_message(fake, -100500, with_text("Removed"))
            third = await bot_message(fake, -100500, replying_to(fake.send_text(group, admin, "/templates")))
            return first, second, third, sent(fake, "sendPhoto"), marker.getvalue()

    first, second, third, photos, marker = asyncio.run(main())
    assert len(photos) == 3 and all("reply_markup" in p["params"] for p in photos)
    assert size_of(first["photo_bytes"]) == ("JPEG", LAYOUT.size(builtins + 1, footer=False))
    assert buttons(first)[0] == "face:party"  # number 1 on the sheet, the first button
    assert f"Templates 1–{builtins + 1}." in first["caption"] and "buttons' order" in first["caption"]
    assert "party" in first["caption"]
    assert second["photo_bytes"] == marker  # not rendered again
    assert size_of(third["photo_bytes"]) == ("JPEG", LAYOUT.size(builtins, footer=False))  # a new set, a new sheet
    assert "face:party" not in buttons(third)


def test_the_sheet_pages_follow_the_setting_and_the_keyboard_still_turns(telegram_bot, library):
    builtins = len(library.templates())

    async def main():
        async with telegram_bot(preview_templates_per_sheet=4, telegram_templates_per_page=4) as (fake, services):
            dan = fake.user(12, "Dan")
            chat = fake.private_chat(dan)
            listing = await bot_message(fake, 12, replying_to(fake.send_text(chat, dan, "/templates")))
            fake.press_button(chat, dan, listing, "face-page:1")
            await fake.wait_for(lambda: bool(sent(fake, "editMessageReplyMarkup")))
            turned = next(m for m in fake.messages_to(12) if m["message_id"] == listing["message_id"])
            return listing, turned

    listing, turned = asyncio.run(main())
    assert size_of(listing["photo_bytes"]) == ("JPEG", LAYOUT.size(4, footer=True))
    assert f"Templates 1–4 of {builtins} (page 1 of {-(-builtins // 4)})." in listing["caption"]
    assert buttons(listing)[:4] == [f"face:{t.name}" for t in library.templates()[:4]]
    assert buttons(turned)[:4] == [f"face:{t.name}" for t in library.templates()[4:8]]
    assert turned["photo_bytes"] == listing["photo_bytes"]


def test_forget_deletes_the_cached_sheets_showing_the_persons_own_templates(telegram_bot, template_media):
    clip = template_media.read_bytes()

    async def main():
        async with telegram_bot() as (fake, services):
            eve = fake.user(14, "Eve")
            chat = fake.private_chat(eve)
            added = fake.send_animation(chat, eve, clip, caption="/addtemplate mine")
            await bot_message(fake, 14, lambda m: replying_to(added)(m) and "✅" in (m.get("text") or ""))
            listing = await bot_message(fake, 14, replying_to(fake.send_text(chat, eve, "/templates")))
            folders = sorted(p.name for p in services.settings.previews_dir.iterdir())
            fake.send_text(chat, eve, "/forget")
            await bot_message(fake, 14, with_text("erased"))
            return listing, folders, sorted(p.name for p in services.settings.previews_dir.iterdir())

    listing, before, after = asyncio.run(main())
    assert buttons(listing)[0] == "face:mine" and listing["photo_bytes"]
    assert before == ["telegram-user-14"] and after == []
