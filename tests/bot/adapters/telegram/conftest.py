"""The real python-telegram-bot `Application` of memeswap, over real services (SQLite store,
in-process engine, the session's analyser and swapper), polling a loopback FakeTelegram."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from memeswap.bot.adapters.telegram.application import TelegramAdapter
from memeswap.bot.assembly import open_services
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.meme_maker import MemeMaker
from tests.fakes.telegram_api import FakeTelegram

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
def telegram_bot(tmp_path: Path, maker: MemeMaker):
    """`async with telegram_bot(**settings) as (fake, services):` a running bot and its Telegram.

    `before_start=lambda fake: ...` prepares the fake before the bot logs in (a fault at start)."""

    @contextlib.asynccontextmanager
    async def running(before_start: Callable[[FakeTelegram], None] | None = None,
                      **overrides) -> AsyncIterator[tuple[FakeTelegram, BotServices]]:
        async with FakeTelegram(token=TOKEN) as fake:
            settings = Settings(_env_file=None, data_dir=tmp_path / "data", telegram_token=TOKEN,
                                telegram_api_url=fake.base_url, telegram_file_url=fake.base_file_url,
                                ops_port=0, **overrides)
            async with open_services(settings, maker=maker) as services:
                if before_start is not None:
                    before_start(fake)
                async with TelegramAdapter(services, poll_timeout_s=1).running():
                    yield fake, services
            assert fake.errors == []

    return running


@pytest.fixture
def logged_errors(caplog) -> Callable[[], list[str]]:
    """`logged_errors()`: every log line at ERROR or above, or with a traceback, so far."""
    caplog.set_level(logging.INFO)
    return lambda: [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture(scope="session")
def template_gif(template_media: Path) -> bytes:
    """The short clip users upload in these tests (tests/bot/conftest.py), as a GIF."""
    return encode_frames(list(read_frames(template_media)), "gif", fps=12).data
