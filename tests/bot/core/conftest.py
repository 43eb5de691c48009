"""A migrated database (both backends), a template library of the test's own, and the
use cases over them."""

import asyncio

import pytest

from memeswap.bot.core.templates import CustomTemplates, ScopeCaps
from memeswap.bot.store.database import Database
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.templates.library import TemplateLibrary


@pytest.fixture
def database(database_url):
    db = Database(database_url, pooled=False)
    asyncio.run(db.migrate())
    yield db
    asyncio.run(db.close())


@pytest.fixture
def scoped_library(tmp_path, analyser, track_cache) -> TemplateLibrary:
    return TemplateLibrary(tmp_path / "templates", track_cache, analyser, MediaLimits())


@pytest.fixture
def templates(database, scoped_library) -> CustomTemplates:
    return CustomTemplates(database, scoped_library, caps=ScopeCaps(max_templates=3), user_caps=ScopeCaps(2))
