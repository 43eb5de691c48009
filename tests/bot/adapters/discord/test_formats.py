"""`/swap format:` on Discord, which shows GIF, MP4 and WebP inline: the choices come from
the formats registry, and the meme arrives in the format asked for, under its name."""

from __future__ import annotations

import asyncio

import pytest

from memeswap.inference.media.formats.registry import FORMATS
from tests.bot.adapters.discord.conftest import GUILD, final_response
from tests.fakes.discord_api import MIB

SIGNATURES = {"mp4": lambda data: data[4:8] == b"ftyp", "webp": lambda data: data[:4] == b"RIFF" and
              data[8:12] == b"WEBP"}


def test_the_format_option_offers_every_registered_format(discord_bot):
    async def main():
        async with discord_bot() as world:
            return world.fake.synced_commands()

    commands = asyncio.run(main())
    swap = next(c for c in commands if c["name"] == "swap")
    option = next(o for o in swap["options"] if o["name"] == "format")
    assert option.get("required", False) is False
    assert [(c["name"], c["value"]) for c in option["choices"]] == [("GIF", "gif"), ("MP4", "mp4"), ("WebP", "webp")]
    assert [c["value"] for c in option["choices"]] == list(FORMATS)


@pytest.mark.parametrize("fmt", ["mp4", "webp"])
def test_asking_for_a_format_delivers_it(fmt, discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            ivy = fake.user(31, "ivy")
            fake.member(GUILD, ivy)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = fake.slash_command(GUILD, world.channel, ivy, "swap",
                                      {"template": "bounce", "selfie": selfie, "format": fmt})
            return await final_response(fake, swap)

    final = asyncio.run(main())
    assert final["content"] == "✅ Here's your meme!"
    [meme] = final["attachments"]
    assert meme["filename"] == f"meme.{fmt}" and SIGNATURES[fmt](meme["data"]) and meme["size"] <= 10 * MIB
