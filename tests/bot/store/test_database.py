"""Migrations bring an empty database to the current schema, on both backends, and a
failed transaction writes nothing."""

import asyncio
import subprocess
import sys
import uuid

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from memeswap.bot.store.database import MIGRATIONS, Database
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
    assert version == "0003"


MIGRATE_ON_GO = """
import asyncio, sys
from memeswap.bot.store.database import Database

async def main():
    database = Database(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        await database.migrate()
    finally:
        await database.close()

asyncio.run(main())
"""


def test_bots_starting_together_migrate_one_after_the_other(postgres_server):
    """Four bot processes' first start on one empty PostgreSQL at once (compose, Kubernetes):
    all succeed and the schema is there once. Without the advisory lock two of them create the
    same table and one fails ("duplicate key value violates unique constraint")."""
    url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATE_ON_GO, url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        for process in processes:  # all four go at once
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [(process.wait(timeout=60), process.stderr.read()) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [code for code, _ in outcomes] == [0] * 4, [err[-300:] for _, err in outcomes]

    async def versions():
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                return (await connection.execute(text("select version_num from alembic_version"))).scalars().all()
        finally:
            await database.close()

    assert asyncio.run(versions()) == ["0003"]


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


def _to_revision(revision: str, downgrade: bool = False):
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        (command.downgrade if downgrade else command.upgrade)(config, revision)
    return run


def test_0003_adds_the_report_tables_to_a_0001_store_and_keeps_its_rows(database_url):
    """A store made by 0001, with a person and an audit entry in it, upgrades to the newest (issued
    memes, template reports) with its rows kept, and downgrades back."""
    async def main():
        database = Database(database_url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(_to_revision("0001"))
                await connection.execute(text("insert into users (platform, platform_user_id, created_at) "
                                              "values ('discord', '7', CURRENT_TIMESTAMP)"))
                await connection.execute(text("insert into audit_log (at, actor_id, action, scope_key, subject) "
                                              "values (CURRENT_TIMESTAMP, 1, 'face.save', 'discord-user-7', 'x')"))
            await database.migrate()
            async with database.engine.connect() as connection:
                upgraded = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
                kept = (await connection.execute(text("select count(*) from audit_log"))).scalar()
            async with database.engine.begin() as connection:
                await connection.run_sync(_to_revision("0001", downgrade=True))
                downgraded = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
                users = (await connection.execute(text("select count(*) from users"))).scalar()
            return upgraded, kept, downgraded, users
        finally:
            await database.close()

    upgraded, kept, downgraded, users = asyncio.run(main())
    assert {"issued_memes", "template_reports"} <= upgraded and kept == 1
    assert not {"issued_memes", "template_reports"} & downgraded and users == 1


def test_the_face_saved_before_names_becomes_the_default_face_me(database_url):
    """Before faces had names people chose, every saved face was named "default"; the
    migration names it "me", the default face now, on both backends, and back down again."""
    async def names(database) -> list[str]:
        async with database.engine.connect() as connection:
            return list((await connection.execute(text("select name from saved_faces order by id"))).scalars())

    async def main():
        database = Database(database_url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(_to_revision("0001"))
                await connection.execute(text(
                    "insert into users (id, platform, platform_user_id, created_at) "
                    "values (1, 'telegram', '1', CURRENT_TIMESTAMP), (2, 'discord', '2', CURRENT_TIMESTAMP)"))
                for face_id, user_id in ((1, 1), (2, 2)):
                    await connection.execute(text(
                        "insert into saved_faces (id, user_id, name, crop_png, landmarks, analyser, created_at) "
                        "values (:id, :user, 'default', :png, :png, 'mediapipe', CURRENT_TIMESTAMP)"),
                        {"id": face_id, "user": user_id, "png": b"\x89PNG"})
            await database.migrate()
            upgraded = await names(database)
            async with database.engine.begin() as connection:
                await connection.run_sync(_to_revision("0001", downgrade=True))
            return upgraded, await names(database)
        finally:
            await database.close()

    upgraded, downgraded = asyncio.run(main())
    assert upgraded == ["me", "me"]
    assert downgraded == ["default", "default"]
