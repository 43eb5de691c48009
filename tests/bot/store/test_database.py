"""Migrations bring an empty database to the current schema, on both backends, and a
failed transaction writes nothing."""

import asyncio

import pytest
from sqlalchemy import inspect, select, text

from memeswap.bot.store.database import Database
from memeswap.bot.store.models import Base, User


def test_migrate_creates_every_table_and_is_repeatable(database_url):
    async def main():
        database = Database(database_url)
        try:
            await database.migrate()
            await database.migrate()  # already current: nothing to do
            async with database.engine.connect() as connection:
                tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
                version = (await connection.execute(text("select version_num from alembic_version"))).scalar()
            return tables, version
        finally:
            await database.close()

    tables, version = asyncio.run(main())
    assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} == tables
    assert version == "0001"


def test_a_failed_transaction_writes_nothing(database_url):
    async def main():
        database = Database(database_url)
        try:
            await database.migrate()
            with pytest.raises(RuntimeError):
                async with database.transaction() as session:
                    session.add(User(platform="telegram", platform_user_id="1"))
                    await session.flush()
                    raise RuntimeError("crash mid-write")
            async with database.transaction() as session:
                return (await session.scalars(select(User))).all()
        finally:
            await database.close()

    assert asyncio.run(main()) == []
