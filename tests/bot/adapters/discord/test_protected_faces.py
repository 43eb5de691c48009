"""Protected faces are checked where and when a swap happens: a person's own template goes
wherever they go, so it meets each server's own list."""

from __future__ import annotations

import asyncio

from memeswap.bot.core.protection import ProtectedFaceList
from memeswap.bot.core.requesters import Requester, Scope
from memeswap.inference.safety.protected_faces import DlibFaceDescriptor
from tests.bot.adapters.conftest import jpeg
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import final_response
from tests.fakes.discord_api import PERM_MANAGE_GUILD


def test_a_persons_own_template_is_refused_in_a_server_that_protects_its_face(discord_bot, template_media,
                                                                              selfie_jpeg, astronaut, analyser):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            bea, admin = fake.user(90, "bea"), fake.user(91, "ada")
            fake.member(GUILD, bea)
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            dm = fake.dm_channel(bea)
            upload = fake.attachment(dm["id"], template_media.read_bytes(), "mine.mp4", "video/mp4")
            added = await final_response(fake, fake.slash_command(None, dm, bea, "templates-admin add",
                                                                  {"file": upload, "name": "mine"}))
            # The server protects the face the template shows (the astronaut of the built-ins).
            here = Requester("discord", "91", Scope("guild", "discord", str(GUILD)), is_scope_admin=True)
            protected = ProtectedFaceList(world.services.database, DlibFaceDescriptor(), analyser)
            await protected.add(here, jpeg(astronaut), "astronaut", here.scope)

            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            in_server = await final_response(fake, fake.slash_command(GUILD, world.channel, bea, "swap",
                                                                      {"template": "mine", "selfie": selfie}))
            selfie = fake.attachment(dm["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            in_dm = await final_response(fake, fake.slash_command(None, dm, bea, "swap",
                                                                  {"template": "mine", "selfie": selfie}))
            return added, in_server, in_dm

    added, in_server, in_dm = asyncio.run(main())
    assert added["content"].startswith("✅ Added “mine” for you")
    assert in_server["content"] == "⚠️ This template shows a face that can't be used in swaps here."
    assert in_server["attachments"] == []
    assert in_dm["content"] == "✅ Here's your meme!"
