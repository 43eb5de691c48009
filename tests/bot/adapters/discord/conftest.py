"""The real discord.py bot of memeswap, over real services (SQLite store, in-process engine,
the session's analyser and swapper), connected to a loopback FakeDiscord, commands synced."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memeswap.bot.adapters.discord.client import DiscordAdapter
from memeswap.bot.assembly import open_services
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.meme_maker import MemeMaker
from tests.fakes.discord_api import FakeDiscord

GUILD, OTHER_GUILD = 1001 << 22, 1002 << 22
CHANNEL, OTHER_CHANNEL = 5001, 5002
TIMEOUT = 90.0  # a swap on a busy 2-core machine


@dataclass
class DiscordWorld:
    fake: FakeDiscord
    services: BotServices
    adapter: DiscordAdapter
    channel: dict
    other_channel: dict


@pytest.fixture
def discord_bot(tmp_path: Path, maker: MemeMaker):
    """`async with discord_bot(fake_options, **settings) as world:` a guild (tier 0) and
    another (tier 2), each with a channel; the bot connected and its commands synced. The fake's
    origin is a loopback origin the bot downloads from (`download_loopback_origins` adds more)."""

    @contextlib.asynccontextmanager
    async def running(fake_options: dict | None = None, **overrides) -> AsyncIterator[DiscordWorld]:
        async with FakeDiscord(**(fake_options or {})) as fake:
            fake.guild(GUILD, "Meme Lab", premium_tier=0)
            fake.guild(OTHER_GUILD, "Boosted", premium_tier=2)
            channel = fake.text_channel(GUILD, CHANNEL, "memes")
            other_channel = fake.text_channel(OTHER_GUILD, OTHER_CHANNEL, "memes")
            origins = [fake.http_base, *overrides.pop("download_loopback_origins", [])]
            settings = Settings(_env_file=None, data_dir=tmp_path / "data", discord_token=fake.token,
                                ops_port=0, download_loopback_origins=origins,
                                **{"discord_cooldown_s": 0, **overrides})
            with fake.patch_client():
                async with open_services(settings, maker=maker) as services:
                    adapter = DiscordAdapter(services)
                    async with adapter.running():
                        await adapter.bot.tree.sync()  # explicit, as `memeswap discord sync` does
                        yield DiscordWorld(fake, services, adapter, channel, other_channel)
            assert fake.errors == [] and fake.unknown_routes == []

    return running


async def final_response(fake: FakeDiscord, interaction: dict, timeout: float = TIMEOUT) -> dict:
    """The original response once it shows the meme or says why not."""
    def done() -> bool:
        response = fake.original_response(interaction)
        return bool(response) and response["content"].startswith(("✅", "⚠️", "Done", "⏳ Easy"))

    await fake.wait_for(done, timeout)
    return fake.original_response(interaction)
