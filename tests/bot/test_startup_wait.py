"""`memeswap serve` and `memeswap worker` started before their database or Redis, as in a
compose stack's first `up`: they wait (bounded by MEMESWAP_STARTUP_WAIT_S, one log line a
try, /healthz "starting" meanwhile), come up once it answers, stop cleanly on SIGTERM even
while waiting, and fail at once on what waiting cannot cure (a wrong password)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from memeswap.inference.jobs.local_redis import LocalRedisServer, free_loopback_port
from tests.bot.ops_ports import healthy, healthz
from tests.fakes.starting_up import StartingUp
from tests.postgres_server import LocalPostgresServer


def memeswap_env(tmp_path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESWAP_")}
    env.update({"MEMESWAP_DATA_DIR": str(tmp_path / "data"),
                **{f"MEMESWAP_{k.upper()}": v for k, v in settings.items()}})
    return env


async def spawn(tmp_path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "memeswap", *args, cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def log_line(process: asyncio.subprocess.Process, seen: list[str], wanted: str, timeout: float = 60) -> str:
    """Read the process's log (kept in `seen`) until a line holds `wanted`."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), max(0.1, deadline - time.monotonic()))
        if not line:
            raise AssertionError(f"the process ended before logging {wanted!r}:\n" + "".join(seen)[-3000:])
        seen.append(line.decode())
        if wanted in seen[-1]:
            return seen[-1]


async def stopped(process: asyncio.subprocess.Process, seen: list[str], timeout: float = 60) -> float:
    """SIGTERM, then the rest of its log; returns how long it took to exit."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, rest = await asyncio.wait_for(process.communicate(), timeout)
    seen.extend(rest.decode().splitlines(keepends=True))
    return time.monotonic() - began


def run_once(tmp_path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "memeswap", *args], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    return result, time.monotonic() - began


def test_serve_no_chat_waits_for_a_postgresql_that_starts_later(tmp_path):
    """The first `up` of a compose stack: the bot is there before PostgreSQL. It says what it
    waits for (never the password), /healthz says "starting", and once PostgreSQL is up the
    bot migrates, turns healthy, and stops with status 0 on SIGTERM."""
    database = LocalPostgresServer(port=free_loopback_port())
    ops_port = free_loopback_port()
    # The `postgres` database: initdb makes it, while `memeswap` is created only once the
    # server answers (the postgres image creates its database before it listens on TCP).
    env = memeswap_env(tmp_path, database_url=database.database_url("postgres"), ops_port=str(ops_port))

    async def main():
        process = await spawn(tmp_path, env, "serve", "--no-chat")
        seen: list[str] = []
        try:
            waiting = await log_line(process, seen, f"waiting for the database at 127.0.0.1:{database.port}")
            starting = await asyncio.to_thread(healthz, ops_port)
            await asyncio.to_thread(database.start)
            ready = await healthy(ops_port)
            serving = await log_line(process, seen, "serving no chat platform (--no-chat)")
        finally:
            await stopped(process, seen)
        return process.returncode, waiting, starting, ready, serving, "".join(seen)

    try:
        code, waiting, starting, ready, serving, logs = asyncio.run(main())
    finally:
        database.stop()
    assert code == 0, logs[-3000:]
    assert "(connection refused); retry in " in waiting and ", giving up in " in waiting, waiting
    assert starting[0] == 503 and json.loads(starting[1]) == {"ok": False, "starting": True}
    assert ready[0] == 200 and json.loads(ready[1])["ok"] is True, ready
    assert f"on port {ops_port}" in serving
    assert database.password not in logs and "Traceback" not in logs


def test_worker_waits_for_a_redis_that_starts_later(tmp_path):
    redis = LocalRedisServer().start()
    redis.crash()  # the port is known, nothing listens on it yet
    ops_port = free_loopback_port()
    env = memeswap_env(tmp_path, redis_url=redis.url, ops_port=str(ops_port))

    async def main():
        process = await spawn(tmp_path, env, "worker")
        seen: list[str] = []
        try:
            waiting = await log_line(process, seen, f"waiting for Redis at 127.0.0.1:{redis.port}")
            starting = await asyncio.to_thread(healthz, ops_port)
            await asyncio.to_thread(redis.start)
            ready = await healthy(ops_port)
        finally:
            await stopped(process, seen)
        return process.returncode, waiting, starting, ready, "".join(seen)

    try:
        code, waiting, starting, ready, logs = asyncio.run(main())
    finally:
        redis.stop()
    assert code == 0, logs[-3000:]
    assert "(connection refused); retry in " in waiting, waiting
    assert starting[0] == 503 and json.loads(starting[1]) == {"ok": False, "starting": True}
    assert ready[0] == 200 and json.loads(ready[1])["ok"] is True, ready
    assert "Traceback" not in logs


def test_serve_waits_out_a_postgresql_starting_up_and_a_redis_loading_its_data(tmp_path, postgres_server, redis_url,
                                                                               redis_prefix):
    """Up but not ready: PostgreSQL's "the database system is starting up" and Redis's LOADING
    are waited out like a refused connection, the database first, then Redis."""
    database_url = postgres_server.create_database("starting_up")
    ops_port = free_loopback_port()

    async def main():
        async with StartingUp("postgresql", "127.0.0.1", postgres_server.port) as database, \
                StartingUp("redis", "127.0.0.1", urlsplit(redis_url).port) as redis:
            env = memeswap_env(tmp_path, ops_port=str(ops_port), redis_prefix=redis_prefix,
                               database_url=database_url.replace(f":{postgres_server.port}/", f":{database.port}/"),
                               redis_url=redis_url.replace(f":{urlsplit(redis_url).port}/", f":{redis.port}/"))
            process = await spawn(tmp_path, env, "serve", "--no-chat")
            seen: list[str] = []
            try:
                await log_line(process, seen, f"waiting for the database at 127.0.0.1:{database.port} "
                                              "(the database system is starting up)")
                starting = await asyncio.to_thread(healthz, ops_port)
                database.open()
                await log_line(process, seen, f"waiting for Redis at 127.0.0.1:{redis.port} "
                                              "(Redis is loading the dataset in memory)")
                redis.open()
                ready = await healthy(ops_port)
            finally:
                await stopped(process, seen)
        return process.returncode, starting, ready, "".join(seen)

    code, starting, ready, logs = asyncio.run(main())
    assert code == 0, logs[-3000:]
    assert starting[0] == 503 and json.loads(starting[1]) == {"ok": False, "starting": True}
    assert ready[0] == 200 and json.loads(ready[1])["ok"] is True, ready
    assert postgres_server.password not in logs and "Traceback" not in logs


def test_serve_gives_up_on_an_unreachable_database_once_the_wait_is_over(tmp_path):
    port = free_loopback_port()
    env = memeswap_env(tmp_path, database_url=f"postgresql+asyncpg://memeswap:hunter2@127.0.0.1:{port}/memeswap",
                       startup_wait_s="2", ops_port="0")
    result, seconds = run_once(tmp_path, env, "serve", "--no-chat")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines[-1].startswith("error: cannot reach the database (MEMESWAP_DATABASE_URL): "), lines
    waits = [line for line in lines if f"waiting for the database at 127.0.0.1:{port} (connection refused)" in line]
    assert len(waits) >= 2 and all(line.endswith(("giving up in 2 s", "giving up in 1 s", "giving up in 0 s"))
                                   for line in waits), lines
    assert len(waits) == len(lines) - 2  # the rest: where /healthz is served, and the error
    assert "hunter2" not in result.stderr
    assert seconds < 30  # 2 s of waiting, the rest is the interpreter starting


def test_a_database_port_that_accepts_and_never_answers_is_given_up_on(tmp_path):
    """A wrong port or a stuck proxy: the connection opens and nothing comes back. One try is
    bounded (10 s, asyncpg's own default is 60), so the wait still ends with one line."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        env = memeswap_env(tmp_path, database_url=f"postgresql+asyncpg://memeswap:hunter2@127.0.0.1:{port}/memeswap",
                           startup_wait_s="1", ops_port="0")
        result, seconds = run_once(tmp_path, env, "serve", "--no-chat")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: cannot reach the database (MEMESWAP_DATABASE_URL): "), result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert seconds < 40  # one 10 s try and the interpreter starting, not asyncpg's 60 s


def test_serve_with_a_wrong_database_password_fails_at_once(tmp_path, postgres_server):
    url = postgres_server.url.replace(postgres_server.password, "not-the-password")
    env = memeswap_env(tmp_path, database_url=url, startup_wait_s="60", ops_port="0")
    result, seconds = run_once(tmp_path, env, "serve", "--no-chat")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        'error: the database refused the connection (MEMESWAP_DATABASE_URL): password authentication failed for '
        'user "memeswap"')
    assert "waiting for" not in result.stderr and "not-the-password" not in result.stderr
    assert seconds < 30  # not the 60 s a retried error would take


def test_worker_with_a_wrong_redis_password_fails_at_once(tmp_path):
    port = free_loopback_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                              "--appendonly", "no", "--requirepass", "the-password"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = memeswap_env(tmp_path, redis_url=f"redis://:not-the-password@127.0.0.1:{port}/0", startup_wait_s="60",
                           ops_port="0")
        deadline = time.monotonic() + 10
        with Redis(port=port, password="the-password") as client:
            while True:
                try:
                    client.ping()
                    break
                except RedisConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        result, seconds = run_once(tmp_path, env, "worker")
    finally:
        redis.terminate()
        redis.wait(10)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach Redis (MEMESWAP_REDIS_URL): "
                                                             "invalid username-password pair"), result.stderr
    assert "waiting for" not in result.stderr and "not-the-password" not in result.stderr
    assert seconds < 30  # not the 60 s a retried error would take


@pytest.mark.parametrize("command, setting, awaited", [
    (("serve", "--no-chat"), "database_url", "the database"),
    (("worker",), "redis_url", "Redis"),
])
def test_sigterm_while_waiting_exits_at_once_and_cleanly(tmp_path, command, setting, awaited):
    port = free_loopback_port()
    url = (f"postgresql+asyncpg://memeswap:hunter2@127.0.0.1:{port}/memeswap" if setting == "database_url"
           else f"redis://:hunter2@127.0.0.1:{port}/0")
    env = memeswap_env(tmp_path, ops_port="0", **{setting: url})

    async def main():
        process = await spawn(tmp_path, env, *command)
        seen: list[str] = []
        await log_line(process, seen, f"waiting for {awaited} at 127.0.0.1:{port}")
        seconds = await stopped(process, seen)
        return process.returncode, seconds, "".join(seen)

    code, seconds, logs = asyncio.run(main())
    assert code == 0, logs
    assert seconds < 10, logs  # against the 120 s it would otherwise wait
    assert "Traceback" not in logs and "error" not in logs.lower() and "hunter2" not in logs
    assert f"stopped while waiting for {awaited}" in logs
