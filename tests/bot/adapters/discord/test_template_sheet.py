"""/templates list on Discord: the names, and the preview sheet attached to the response."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.inference.templates.preview_sheet import SheetLayout
from tests.bot.adapters.discord.conftest import GUILD, OTHER_GUILD, TIMEOUT

LAYOUT = SheetLayout()


def test_templates_list_attaches_the_sheet_of_this_servers_templates(discord_bot, template_media, library):
    builtins = len(library.templates())

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            ada = fake.user(30, "ada")
            fake.member(GUILD, ada)
            fake.member(OTHER_GUILD, ada)
            here = Requester("discord", "30", Scope("guild", "discord", str(GUILD)), is_scope_admin=True)
            await world.services.templates.add(here, template_media, "bonk")
            shown = {}
            for guild, channel in ((GUILD, world.channel), (OTHER_GUILD, world.other_channel)):
                listing = fake.slash_command(guild, channel, ada, "templates list")
                await fake.wait_for(lambda: bool((fake.original_response(listing) or {}).get("attachments")), TIMEOUT)
                shown[guild] = fake.original_response(listing), fake.callbacks(listing)
            return shown

    shown = asyncio.run(main())
    for guild, count in ((GUILD, builtins + 1), (OTHER_GUILD, builtins)):
        response, callbacks = shown[guild]
        assert [c["type"] for c in callbacks] == [5] and callbacks[0]["data"]["flags"] & 64  # deferred, ephemeral
        [sheet] = response["attachments"]
        assert sheet["filename"] == "templates-1.jpg"
        with Image.open(io.BytesIO(sheet["data"])) as image:
            assert image.format == "JPEG" and image.size == LAYOUT.size(count, footer=False)
        assert f"Templates 1–{count}." in response["content"]
    assert "bonk" in shown[GUILD][0]["content"] and "bonk" not in shown[OTHER_GUILD][0]["content"]
