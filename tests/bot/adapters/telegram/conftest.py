"""The real python-telegram-bot `Application` of memeswap, over real services (SQLite store,
in-process engine, the session's analyser and swapper), polling a loopback FakeTelegram."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.telegram.application import TelegramAdapter
from bot.components import Components
from bot.services import BotServices, open_services
from bot.settings import Settings
from tests.fakes.telegram_api import FakeTelegram

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
def telegram_bot(tmp_path: Path, components: Components):
    """`async with telegram_bot(**settings) as (fake, services):` a running bot and its Telegram."""

    @contextlib.asynccontextmanager
    async def running(**overrides) -> AsyncIterator[tuple[FakeTelegram, BotServices]]:
        async with FakeTelegram(token=TOKEN) as fake:
            settings = Settings(_env_file=None, data_dir=tmp_path / "data", telegram_token=TOKEN,
                                telegram_api_url=fake.base_url, telegram_file_url=fake.base_file_url,
                                ops_port=0, **overrides)
            async with open_services(settings, components=components) as services:
                async with TelegramAdapter(services, poll_timeout_s=1).running():
                    yield fake, services
            assert fake.errors == []

    return running
