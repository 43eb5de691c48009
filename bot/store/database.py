"""The database: an SQLite file in the data folder by default, PostgreSQL by
`MEMESWAP_DATABASE_URL`; the schema is brought up to date by Alembic at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from memeswap.inference.errors import InputError

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE_FILE = "memeswap.db"  # the SQLite store's name in the data folder
CONNECT_TIMEOUT_S = 10.0  # one PostgreSQL connection attempt
MIGRATION_LOCK_KEY = 0x6D656D65  # PostgreSQL advisory lock held while migrating ("meme")


UNREACHABLE = (OSError, OperationalError)  # what a database that cannot be reached raises


def unreachable(error: BaseException) -> InputError:
    """One line for a store that cannot be reached; the URL is not repeated (it may hold a
    password)."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
    return InputError(f"cannot reach the database (MEMESWAP_DATABASE_URL): {reason}", code="settings")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class Database:
    """One async engine and its session factory. `async with database.transaction() as s:`
    commits on success and rolls back on any exception, so a failed use case writes nothing."""

    def __init__(self, url: str, pooled: bool = True) -> None:
        """`pooled=False` opens a connection per transaction: for callers that run each
        piece of work in a fresh event loop (asyncio.run), which pooled connections outlive."""
        self.url = url
        options: dict = {"pool_pre_ping": True} if pooled else {"poolclass": NullPool}
        if url.startswith("postgresql+asyncpg"):
            # asyncpg waits 60 s by default for a server that accepts and never answers (a
            # wrong port, a stuck proxy): longer than the start-up wait it is meant to fit in.
            options["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> Database:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(data_dir / DATABASE_FILE))

    async def migrate(self) -> None:
        """Upgrade the schema to the newest migration (a no-op when it is current).

        Several bot processes start at once on one PostgreSQL (a compose stack, Kubernetes
        pods): the first takes a transaction-scoped advisory lock and migrates; the others wait
        for its commit and then find the schema current. Without the lock two of them create
        the same tables and one fails."""
        async with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await connection.run_sync(_upgrade)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys (and so ON DELETE CASCADE) are off in SQLite unless asked for, per
    connection; WAL lets readers work while a write commits."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
