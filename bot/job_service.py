"""Builds the job service a process needs from its `Settings`: the blob store, the engine a
bot shard submits to, and the worker that `memeswap worker` runs.

`MEMESWAP_REDIS_URL` is the one switch: unset, jobs run in a thread pool inside the bot's
own process and blobs live in the data folder; set, jobs go through Redis Streams to
worker processes and blobs live in Redis where every host can read them.

Every process serves /metrics and /healthz (`ops_server`), from before its models load.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable

from bot.components import Components, build_components
from bot.settings import Settings
from inference.errors import InputError
from inference.jobs.blobs import BlobStore, LocalBlobStore
from inference.jobs.contract import InferenceEngine
from inference.jobs.in_process import InProcessEngine
from inference.jobs.redis_blobs import RedisBlobStore
from inference.jobs.redis_engine import RedisStreamsEngine
from inference.jobs.redis_protocol import StreamKeys
from inference.jobs.redis_worker import StreamWorker
from inference.jobs.swap_runner import make_swap_runner
from inference.observability.metrics import JobMetrics
from inference.observability.ops_server import HealthCheck, OpsServer
from inference.pipeline import AI_LABEL

log = logging.getLogger("memeswap.ops")


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.redis_url is None:
        return LocalBlobStore(settings.blobs_dir)
    return RedisBlobStore.from_url(settings.redis_url.get_secret_value(), prefix=settings.redis_prefix,
                                   max_blob_bytes=settings.max_blob_bytes,
                                   max_total_bytes=settings.max_blob_store_bytes)


def _limits(settings: Settings) -> dict:
    return {"max_queue": settings.job_queue_max, "per_user_concurrency": settings.per_user_jobs,
            "per_user_rate": (settings.per_user_jobs_per_minute, settings.per_user_burst),
            "default_deadline_s": settings.job_deadline_s}


def build_engine(settings: Settings, blobs: BlobStore, metrics: JobMetrics | None = None,
                 components: Components | None = None, **overrides) -> InferenceEngine:
    """The engine a bot shard submits to. In-process, it needs the models (`components`,
    built here when not given); on Redis, a shard loads none."""
    options = {**_limits(settings), "metrics": metrics, **overrides}
    if settings.redis_url is not None:
        options.pop("workers", None)  # workers are separate processes
        return RedisStreamsEngine.from_url(settings.redis_url.get_secret_value(), settings.shard_name,
                                           keys=StreamKeys(settings.redis_prefix), retain_s=settings.result_ttl_s,
                                           **options)
    components = components or build_components(settings)
    run_job = make_swap_runner(components.analyser, components.swapper, components.library, components.limits,
                               blobs, AI_LABEL if settings.label_outputs else None, settings.badge())
    options.setdefault("workers", settings.job_workers)
    return InProcessEngine(run_job, blobs, result_ttl_s=settings.result_ttl_s, **options)


def build_worker(settings: Settings, components: Components, blobs: BlobStore,
                 metrics: JobMetrics | None = None) -> StreamWorker:
    from redis.asyncio import Redis

    if settings.redis_url is None:
        raise ValueError("memeswap worker needs MEMESWAP_REDIS_URL (the bot runs jobs itself without Redis)")
    run_job = make_swap_runner(components.analyser, components.swapper, components.library, components.limits,
                               blobs, AI_LABEL if settings.label_outputs else None, settings.badge())
    return StreamWorker(Redis.from_url(settings.redis_url.get_secret_value()), run_job, blobs,
                        StreamKeys(settings.redis_prefix), heartbeat_s=settings.worker_heartbeat_s,
                        stale_after_s=settings.worker_stale_after_s, max_deliveries=settings.worker_max_deliveries,
                        result_ttl_s=settings.result_ttl_s, retain_s=settings.result_ttl_s,
                        metrics=metrics or JobMetrics(role="worker"))


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
    """Serve /metrics and /healthz, build the worker (`build` loads the models; /healthz says
    "starting" meanwhile), then run it until SIGTERM or SIGINT; the job in hand is finished
    first, and a second signal leaves it for another worker to take over."""
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
        with contextlib.suppress(asyncio.CancelledError):
            worker = await asyncio.to_thread(build, metrics)
            await worker.run(stop)
