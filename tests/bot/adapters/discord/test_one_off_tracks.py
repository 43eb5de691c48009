"""A one-off swap ("Swap my face into this") leaves no face tracks behind: the posted clip's
tracks go with its one-off template when the swap ends."""

from __future__ import annotations

import asyncio

from memeswap.inference.media.encode import encode_frames
from tests.bot.adapters.conftest import template_frames
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import final_response


def test_a_swap_into_a_posted_gif_leaves_no_tracks(discord_bot, selfie_jpeg, library):
    gif = encode_frames(template_frames(library, "shake")[:8], "gif", fps=12).data

    def cached() -> set[str]:
        return {p.name for p in library.cache.folder.glob("*.npz")}

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice, bob = fake.user(90, "alice"), fake.user(91, "bob")
            fake.member(GUILD, alice)
            fake.member(GUILD, bob)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            await final_response(fake, fake.slash_command(GUILD, world.channel, alice, "face set",
                                                          {"selfie": selfie}))
            before = cached()
            posted = fake.message(world.channel, bob, "look",
                                  attachments=[fake.attachment(world.channel["id"], gif, "dance.gif", "image/gif")])
            final = await final_response(fake, fake.message_context_menu(GUILD, world.channel, alice,
                                                                         "Swap my face into this", posted))
            return final, before, cached()

    final, before, after = asyncio.run(main())
    assert final["content"] == "✅ Here's your meme!", final["content"]
    assert after - before == set()
