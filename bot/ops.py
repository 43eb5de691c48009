"""What every long-running memeswap process serves beside its work: /metrics and /healthz
(`ops_server`), from before its models load; and the run loop of `memeswap worker`."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

from memeswap.bot.settings import Settings
from memeswap.bot.startup_wait import ping_redis_when_reachable
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.redis_worker import StreamWorker
from memeswap.inference.observability.metrics import JobMetrics
from memeswap.inference.observability.ops_server import HealthCheck, OpsServer

log = logging.getLogger("memeswap.ops")

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters


def steady_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """What MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=1048576 do, for the long-running
    processes. glibc gives threads that allocate arenas of their own (up to eight per core),
    and after the first large block is freed it raises its mmap threshold, so later frame
    buffers (tens of MB a job) come from the heap and are seldom handed back. With jobs on
    pool threads a worker's RSS swung and crept by tens to a hundred MB over a 10-minute
    soak (`memeswap bench --soak`); with both settings a job loop's RSS stayed flat, at the
    same speed within 2 %. Either variable set in the environment wins; on a libc other than
    glibc this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(M_ARENA_MAX, arenas)
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    except (OSError, AttributeError):
        pass


@contextlib.asynccontextmanager
async def ops_server(settings: Settings, metrics: JobMetrics, health: HealthCheck) -> AsyncIterator[OpsServer]:
    """/metrics and /healthz on `MEMESWAP_OPS_HOST:MEMESWAP_OPS_PORT` while the block runs.

    Several workers on one host all start on the default port: when MEMESWAP_OPS_PORT was
    left unset and that port is taken, a free one is used instead and one log line says
    which. A port that was set and is taken (or cannot be had at all) is one `InputError`.
    """
    server = OpsServer(metrics, health, settings.ops_host, settings.ops_port)
    try:
        await server.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE or settings.ops_port_chosen:
            reason = os.strerror(error.errno).lower() if error.errno else str(error)
            raise InputError(f"cannot serve /metrics and /healthz on {settings.ops_host}:{settings.ops_port} "
                             f"(MEMESWAP_OPS_HOST, MEMESWAP_OPS_PORT): {reason}", code="settings") from None
        server = OpsServer(metrics, health, settings.ops_host, 0)
        await server.start()
        log.warning("port %d is taken (another memeswap process on this host?): /metrics and /healthz are on "
                    "port %d instead; set MEMESWAP_OPS_PORT to choose one", settings.ops_port, server.port)
    try:
        yield server
    finally:
        await server.close()


async def run_worker(settings: Settings, build: Callable[[JobMetrics], StreamWorker]) -> None:
    """Serve /metrics and /healthz, wait for Redis (up to MEMESWAP_STARTUP_WAIT_S), build the
    worker (`build` loads the models; /healthz says "starting" meanwhile), then run it until
    SIGTERM or SIGINT; the job in hand is finished first, and a second signal leaves it for
    another worker to take over. A signal while Redis is awaited: `StoppedWhileWaiting`."""
    assert settings.redis_url is not None, "a worker takes its jobs from Redis"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    metrics = JobMetrics(role="worker")
    worker: StreamWorker | None = None

    async def health() -> dict:
        return {"ok": False, "starting": True} if worker is None else await worker.health()

    async with ops_server(settings, metrics, health):
        await ping_redis_when_reachable(settings.redis_url.get_secret_value(), settings.startup_wait_s, stop)
        with contextlib.suppress(asyncio.CancelledError):
            worker = await asyncio.to_thread(build, metrics)
            await worker.run(stop)
