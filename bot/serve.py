"""`memeswap serve`: the chat adapters whose tokens are set, in one process, over one set
of services, with /metrics and /healthz beside them, until SIGTERM or SIGINT. With
`--no-chat`, the services and /metrics and /healthz alone: a deployment checked before its
tokens exist."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Protocol

from memeswap.bot.adapters.registry import TOKEN_SETTINGS, adapter_class
from memeswap.bot.assembly import open_services
from memeswap.bot.ops import ops_server
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob
from memeswap.inference.observability.metrics import JobMetrics

if TYPE_CHECKING:
    pass

log = logging.getLogger("memeswap.serve")


class ChatAdapter(Protocol):
    platform: str

    def __init__(self, services: BotServices) -> None: ...

    def running(self) -> contextlib.AbstractAsyncContextManager: ...

    def stopped(self) -> asyncio.Future | None:
        """Done when the adapter stopped by itself (a connection ended for good)."""

    async def deliver_unfollowed(self, job: SwapJob, event: Succeeded | Failed) -> bool: ...

    @staticmethod
    async def check_token(settings: Settings) -> None:
        """Before any model loads: a missing, rejected or unreachable token is one line."""


def configured_platforms(settings: Settings) -> list[str]:
    """The registered platforms whose token is set."""
    return [platform for platform, field in TOKEN_SETTINGS.items() if getattr(settings, field, None) is not None]


def check_tokens(settings: Settings) -> None:
    if not configured_platforms(settings):
        names = " or ".join(f"MEMESWAP_{field.upper()}" for field in TOKEN_SETTINGS.values())
        raise InputError(f"no chat platform to serve: set {names} (see the README)", code="settings")


async def serve(settings: Settings, stop: asyncio.Event | None = None, chat: bool = True) -> None:
    """Run until `stop` is set (by default: on SIGTERM or SIGINT). `chat=False`: no chat
    platform, whatever tokens are set."""
    if chat:
        check_tokens(settings)
    classes = [adapter_class(platform) for platform in configured_platforms(settings)] if chat else []
    for kind in classes:  # before any model loads: a bad token should not cost a minute
        await kind.check_token(settings)
    stop = stop or _stop_on_signals()
    adapters: list[ChatAdapter] = []
    ready = asyncio.Event()

    async def deliver_unfollowed(job: SwapJob, event: Succeeded | Failed) -> None:
        await ready.wait()
        for adapter in adapters:
            if await adapter.deliver_unfollowed(job, event):
                return
        log.warning("job %s: no adapter here posts to %r; its result is dropped", job.job_id, job.reply_to)

    metrics = JobMetrics(role="bot")
    services: BotServices | None = None

    async def health() -> dict:
        return {"ok": False, "starting": True} if services is None else await services.health()

    # The ops port first: a port that cannot be had is one line before a minute of model loading,
    # and /healthz says "starting" while the database and Redis are awaited (`StoppedWhileWaiting`
    # when stopped meanwhile).
    async with ops_server(settings, metrics, health) as ops, \
            open_services(settings, on_unfollowed_final=deliver_unfollowed, metrics=metrics,
                          stop=stop) as services:  # noqa: F811 (health() reads it)
        adapters.extend(kind(services) for kind in classes)
        async with contextlib.AsyncExitStack() as running:
            for adapter in adapters:
                await running.enter_async_context(adapter.running())
            ready.set()
            log.info("serving %s; /metrics and /healthz on port %d",
                     ", ".join(a.platform for a in adapters) or "no chat platform (--no-chat)", ops.port)
            waiting = asyncio.ensure_future(stop.wait())
            ended = [f for f in (a.stopped() for a in adapters) if f is not None]
            await asyncio.wait([waiting, *ended], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            for adapter in adapters:
                gone = adapter.stopped()
                if gone is not None and gone.done():
                    error = None if gone.cancelled() else gone.exception()
                    raise InputError(f"the {adapter.platform} connection ended: {error or 'closed'}",
                                     code="settings")
            log.info("stopping: finishing the swaps in flight (up to %g s)", settings.shutdown_grace_s)
            await services.engine.drain(settings.shutdown_grace_s)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
