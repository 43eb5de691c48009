"""A migrated database (both backends), a template library of the test's own, and the
use cases over them."""

import asyncio
import itertools
from pathlib import Path

import pytest

from bot.core.templates import CustomTemplates, ScopeCaps
from bot.store.database import Database
from inference.media.decode import read_frames
from inference.media.encode import encode_frames
from inference.media.limits import MediaLimits
from inference.templates.library import TemplateLibrary


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


@pytest.fixture(scope="session")
def template_media(tmp_path_factory, analyser, track_cache) -> Path:
    """A template file to add, as a user would upload it: the first 8 frames of the
    built-in "bounce" clip (short, so the many adds of these tests stay quick)."""
    library = TemplateLibrary(tmp_path_factory.mktemp("unused"), track_cache, analyser)
    frames = list(itertools.islice(read_frames(library.get("bounce").media_path), 8))
    target = tmp_path_factory.mktemp("upload") / "upload.mp4"
    target.write_bytes(encode_frames(frames, "mp4", fps=12).data)
    return target
