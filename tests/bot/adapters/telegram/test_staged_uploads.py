"""/addtemplate stages a file the way every platform does (`bot.core.uploads.staged_upload`):
"upload" and its declared type's extension, in a temporary folder removed afterwards, so a
template records "added from upload.gif" on Telegram as on Discord."""

from __future__ import annotations

import asyncio
import tempfile

from memeswap.bot.core.requesters import Requester
from tests.bot.adapters.telegram.test_conversation import bot_message, replying_to


def final_text(fake, status: dict) -> str:
    """The text `status` shows now, after the edits so far."""
    return next(m["text"] for m in fake.messages_to(75) if m["message_id"] == status["message_id"])


def test_added_templates_are_staged_under_the_bots_name_and_the_folder_removed(telegram_bot, template_gif,
                                                                               template_media, tmp_path,
                                                                               monkeypatch):
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))

    async def main():
        async with telegram_bot() as (fake, services):
            max_ = fake.user(75, "Max")
            chat = fake.private_chat(max_)
            sends = [lambda: fake.send_document(chat, max_, template_gif, "my party.gif", "image/gif",
                                                caption="/addtemplate party"),
                     lambda: fake.send_animation(chat, max_, template_media.read_bytes(),
                                                 caption="/addtemplate dance", file_name="my dance.mp4")]
            finals = []
            for send in sends:  # one after the other: each status edited to its end first
                status = await bot_message(fake, 75, replying_to(send()))
                await fake.wait_for(lambda: not final_text(fake, status).startswith("⏳"), 60)
                finals.append(final_text(fake, status))
            scope = Requester.direct("telegram", "75").scope.key
            sources = [services.templates.library.get(f"{scope}/{name}").manifest.source for name in ("party", "dance")]
            return finals, sources

    finals, sources = asyncio.run(main())
    assert finals == ["✅ Added “party” for you. Send a selfie (or /templates) to use it.",
                      "✅ Added “dance” for you. Send a selfie (or /templates) to use it."]
    assert sources == ["added from upload.gif", "added from upload.mp4"]  # as on Discord
    assert list(staging.glob("memeswap-*")) == []
