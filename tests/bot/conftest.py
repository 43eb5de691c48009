"""The store's tests run on both backends: an SQLite file, and a database of its own on
the session's real PostgreSQL server; a short clip stands for a user's upload."""

import itertools
import uuid
from pathlib import Path

import pytest

from memeswap.bot.store.database import sqlite_url
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.templates.library import TemplateLibrary


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "memeswap.db")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def template_media(tmp_path_factory, analyser, track_cache) -> Path:
    """A template file to add, as a user would upload it: the first 8 frames of the
    built-in "bounce" clip (short, so the many adds of these tests stay quick)."""
    library = TemplateLibrary(tmp_path_factory.mktemp("unused"), track_cache, analyser)
    frames = list(itertools.islice(read_frames(library.get("bounce").media_path), 8))
    target = tmp_path_factory.mktemp("upload") / "upload.mp4"
    target.write_bytes(encode_frames(frames, "mp4", fps=12).data)
    return target
