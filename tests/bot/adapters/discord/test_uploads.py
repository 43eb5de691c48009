"""Files people send on Discord, in the words and the staging every platform shares: one
"too big" line whichever check finds it, and an upload staged as "upload" and its type's
extension in a folder that is gone afterwards."""

from __future__ import annotations

import asyncio
import tempfile

from memeswap.bot.core.requesters import Scope
from tests.bot.adapters.discord.conftest import GUILD, final_response
from tests.bot.adapters.discord.test_hostile_input import swap_into_links
from tests.fakes.discord_api import MIB, PERM_MANAGE_GUILD


def test_every_too_big_file_gets_the_same_line(discord_bot, selfie_jpeg):
    """Too big by the size Discord announces, by the Content-Length a server sends, and by
    the bytes of a body that never said: one wording, the size said when Discord says it."""
    async def main():
        async with discord_bot(max_upload_bytes=2 * MIB, max_template_bytes=2 * MIB) as world:
            fake = world.fake
            ada = fake.user(95, "ada")
            fake.member(GUILD, ada)
            big_selfie = fake.attachment(world.channel["id"], b"\xff\xd8\xff" + bytes(3 * MIB), "me.jpg",
                                         "image/jpeg")
            announced = await final_response(fake, fake.slash_command(GUILD, world.channel, ada, "face set",
                                                                      {"selfie": big_selfie}))
            served = fake.attachment(world.channel["id"], b"GIF89a" + bytes(3 * MIB), "big.gif", "image/gif")
            streamed = fake.streamed(bytes(64 * 1024), 64)  # 4 MiB, no Content-Length
            linked = await swap_into_links(world, [served["url"], streamed], selfie_jpeg, user_id=96)
            return [announced["content"], *linked]

    lines = asyncio.run(main())
    assert lines == ["⚠️ That file is 3.0 MB; I can take files up to 2.0 MB. Send a smaller one.",
                     "⚠️ That file is too big; I can take files up to 2.0 MB. Send a smaller one.",
                     "⚠️ That file is too big; I can take files up to 2.0 MB. Send a smaller one."]


def test_an_added_template_is_staged_under_the_bots_name_and_the_folder_removed(discord_bot, template_media,
                                                                                 tmp_path, monkeypatch):
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            ada = fake.user(97, "ada")
            fake.member(GUILD, ada, PERM_MANAGE_GUILD)
            clip = fake.attachment(world.channel["id"], template_media.read_bytes(), "my party.mp4", "video/mp4")
            added = await final_response(fake, fake.slash_command(GUILD, world.channel, ada, "templates-admin add",
                                                                  {"file": clip, "name": "party"}))
            stored = world.services.templates.library.get(f"{Scope('guild', 'discord', str(GUILD)).key}/party")
            return added["content"], stored.manifest.source

    line, source = asyncio.run(main())
    assert line == "✅ Added “party” for this server: `/swap template:party`"
    assert source == "added from upload.mp4"  # as on Telegram: the bot's name, never "my party.mp4"
    assert list(staging.glob("memeswap-*")) == []
