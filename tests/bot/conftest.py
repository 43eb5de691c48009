"""The store's tests run on both backends: an SQLite file, and a database of its own on
the session's real PostgreSQL server."""

import uuid

import pytest

from bot.store.database import sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "memeswap.db")
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
