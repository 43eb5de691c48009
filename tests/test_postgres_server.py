"""The throwaway PostgreSQL of the test suite: real SQL through SQLAlchemy's async engine,
separate databases, never running as root, and nothing left behind after `stop()`."""

import asyncio
import os
import pwd
import socket
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.postgres_server import LocalPostgresServer


def run_sql(url: str, *statements: str) -> list:
    """Run the statements in one transaction; returns the rows of the last one (if any)."""

    async def go() -> list:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = None
                for statement in statements:
                    result = await connection.execute(text(statement))
                return list(result.all()) if result is not None and result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_url_works_with_sqlalchemy_async_engine(postgres_url):
    assert postgres_url.startswith("postgresql+asyncpg://memeswap:")
    assert postgres_url.endswith("/memeswap")
    table = f"t_{uuid.uuid4().hex[:8]}"
    assert run_sql(postgres_url, "select 1") == [(1,)]
    run_sql(postgres_url, f"create table {table} (id serial primary key, name text not null)",
            f"insert into {table} (name) values ('drake'), ('distracted boyfriend')")
    try:
        assert run_sql(postgres_url, f"select name from {table} order by id") == [
            ("drake",), ("distracted boyfriend",)]
    finally:
        run_sql(postgres_url, f"drop table {table}")


def test_wrong_password_is_refused(postgres_url):
    scheme, rest = postgres_url.split("://", 1)
    wrong = f"{scheme}://memeswap:not-the-password@{rest.split('@', 1)[1]}"
    with pytest.raises(Exception, match="password authentication failed"):
        run_sql(wrong, "select 1")


def test_create_database_gives_a_separate_empty_database(postgres_server):
    table = f"t_{uuid.uuid4().hex[:8]}"
    run_sql(postgres_server.url, f"create table {table} (id int)")
    try:
        name = f"db_{uuid.uuid4().hex[:8]}"
        url = postgres_server.create_database(name)
        assert url == postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
        assert run_sql(url, "select current_database()") == [(name,)]
        assert run_sql(url, "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]
        run_sql(url, f"create table {table} (id int)", f"insert into {table} values (7)")
        assert run_sql(url, f"select id from {table}") == [(7,)]
        assert run_sql(postgres_server.url, f"select count(*) from {table}") == [(0,)]
    finally:
        run_sql(postgres_server.url, f"drop table {table}")
    with pytest.raises(ValueError):
        postgres_server.create_database("x; drop database memeswap")


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def test_server_does_not_run_as_root(postgres_server):
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    postmaster = postgres_server.pid
    assert postmaster is not None
    assert uid_of(postmaster) == expected != 0

    async def backend_uid_and_data_directory() -> tuple[int, str]:
        engine = create_async_engine(postgres_server.url)
        try:
            async with engine.connect() as connection:  # the backend lives as long as the connection
                result = await connection.execute(text("select pg_backend_pid(), current_setting('data_directory')"))
                backend, data_directory = result.one()
                return uid_of(backend), data_directory
        finally:
            await engine.dispose()

    backend_uid, data_directory = asyncio.run(backend_uid_and_data_directory())
    assert backend_uid == expected
    assert os.stat(data_directory).st_uid == expected
    assert os.path.dirname(data_directory) == str(postgres_server.folder)
    [(sockets,)] = run_sql(postgres_server.url, "select current_setting('unix_socket_directories')")
    assert sockets == str(postgres_server.folder)


def test_stop_frees_the_port_and_removes_the_folder():
    with LocalPostgresServer() as server:
        port, folder, postmaster = server.port, server.folder, server.pid
        assert folder.is_dir() and postmaster is not None
        assert run_sql(server.url, "select current_user") == [("memeswap",)]
    assert server.folder is None and server.pid is None
    assert not folder.exists()
    assert not os.path.exists(f"/proc/{postmaster}/cmdline") or open(f"/proc/{postmaster}/cmdline").read() == ""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with socket.socket() as probe:  # what a new server would do on that port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
    server.stop()  # a second stop is harmless
