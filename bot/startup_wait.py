"""Waiting, at start, for a database and a Redis that are not up yet.

In a compose stack or on Kubernetes the bot and the workers often start before PostgreSQL
has initialised (seconds, on a first `up`), before Redis has loaded its data, or before a
service's name resolves. `memeswap serve` and `memeswap worker` then try again, with
backoff and jitter, for up to `MEMESWAP_STARTUP_WAIT_S`, one log line a try. Only what
means "not there yet" is tried again: a wrong password or a bad URL fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from memeswap.bot.store.database import UNREACHABLE, Database, unreachable
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.redis_protocol import Outage

log = logging.getLogger("memeswap.startup")

T = TypeVar("T")

CANNOT_CONNECT_NOW = "57P03"  # PostgreSQL: the database system is starting up (or shutting down)
REFUSED_LOGIN = ("28", "3D000")  # PostgreSQL: a wrong user or password; no such database
REDIS_PROBE_TIMEOUT_S = 5.0


class StoppedWhileWaiting(Exception):
    """SIGTERM or SIGINT came while waiting: the process ends cleanly, having started nothing."""


@dataclass(frozen=True)
class Dependency:
    """Something a process needs at start: what the log calls it, where it is (never the
    credentials), and which errors mean "not there yet" (`not_there_yet` gives the reason
    for the log line, or None for an error that waiting will not cure)."""

    name: str
    address: str
    not_there_yet: Callable[[BaseException], str | None]


async def when_reachable(attempt: Callable[[], Awaitable[T]], dependency: Dependency, wait_s: float,
                         stop: asyncio.Event | None = None) -> T:
    """`attempt()`'s result, trying again while `dependency` is not there yet, for up to
    `wait_s` (0: one try). The last error is raised once the bound has passed, or at once
    when it is not one that waiting cures. `stop` set meanwhile: `StoppedWhileWaiting`."""
    backoff = Outage(base_s=0.25, cap_s=8.0, jitter=lambda: 0.5 + random.random() / 2)
    give_up_at = time.monotonic() + wait_s
    while True:
        try:
            return await _unless_stopped(attempt(), stop, dependency)
        except StoppedWhileWaiting:
            raise
        except Exception as error:
            reason = dependency.not_there_yet(error)
            left = give_up_at - time.monotonic()
            if reason is None or left <= 0:
                raise
            delay = min(backoff.failed(error), left)
            log.warning("waiting for %s at %s (%s); retry in %.1f s, giving up in %.0f s", dependency.name,
                        dependency.address, reason, delay, left)
            await _unless_stopped(asyncio.sleep(delay), stop, dependency)


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event | None, dependency: Dependency) -> T:
    if stop is None:
        return await work
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise StoppedWhileWaiting(f"stopped while waiting for {dependency.name}")


# --- the database -------------------------------------------------------------------------

def database_address(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def database_not_there_yet(error: BaseException) -> str | None:
    """Connection refused, a name that does not resolve yet, a timeout, or PostgreSQL still
    starting up. Wrapped by SQLAlchemy and its asyncpg adapter, so the causes are looked at."""
    for cause in _causes(error):
        if getattr(cause, "sqlstate", None) == CANNOT_CONNECT_NOW:
            return "the database system is starting up"
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, OSError) and not isinstance(cause, PermissionError):
            return _os_reason(cause)
    return None


async def migrate_when_reachable(database: Database, wait_s: float, stop: asyncio.Event | None = None) -> None:
    """`database.migrate()`, waiting for a server that is not up yet. Failing: one `InputError`."""
    dependency = Dependency("the database", database_address(database.url), database_not_there_yet)
    try:
        await when_reachable(database.migrate, dependency, wait_s, stop)
    except UNREACHABLE as error:
        raise unreachable(error) from None
    except DBAPIError as error:
        refusal = next((cause for cause in _causes(error)
                        if str(getattr(cause, "sqlstate", "")).startswith(REFUSED_LOGIN)), None)
        if refusal is None:
            raise
        reason = " ".join(str(refusal).split())[:160]
        raise InputError(f"the database refused the connection (MEMESWAP_DATABASE_URL): {reason}",
                         code="settings") from None


# --- Redis --------------------------------------------------------------------------------

def redis_address(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.scheme == "unix":
        return parsed.path
    return f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"


def redis_not_there_yet(error: BaseException) -> str | None:
    """Unreachable, timed out, or still loading its data (LOADING is a ConnectionError in
    redis-py); a refused password is a ConnectionError too, and is not waited out."""
    if isinstance(error, AuthenticationError):
        return None
    if isinstance(error, RedisTimeoutError):
        return "timed out"
    if isinstance(error, RedisConnectionError):
        for cause in _causes(error):
            if isinstance(cause, OSError) and not isinstance(cause, RedisError):
                return _os_reason(cause)
        return " ".join(str(error).split())[:120] or type(error).__name__
    return None


async def ping_redis_when_reachable(url: str, wait_s: float, stop: asyncio.Event | None = None) -> None:
    """PING Redis, waiting for one that is not up yet (or still loading). Failing: one
    `InputError`; its text is redis-py's, which never holds the URL's password."""
    client = Redis.from_url(url, socket_connect_timeout=REDIS_PROBE_TIMEOUT_S, socket_timeout=REDIS_PROBE_TIMEOUT_S,
                            retry=Retry(NoBackoff(), 0))
    try:
        await when_reachable(client.ping, Dependency("Redis", redis_address(url), redis_not_there_yet), wait_s, stop)
    except RedisError as error:
        raise InputError(f"cannot reach Redis (MEMESWAP_REDIS_URL): {error}", code="settings") from None
    finally:
        await client.aclose()


def _causes(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (SQLAlchemy's `orig`) and what caused it, outermost first."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _os_reason(error: OSError) -> str:
    """"connection refused", "name or service not known": the errno's words, not the
    driver's wording around them (which may name more than the host and port)."""
    if isinstance(error, socket.gaierror) or not error.errno or error.errno < 0:
        return (error.strerror or type(error).__name__).lower()
    return os.strerror(error.errno).lower()
