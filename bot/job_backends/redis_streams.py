"""Jobs through Redis Streams to `memeswap worker` processes on any host; blobs in Redis,
where every host can read them. A bot shard loads no swap model."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.jobs.redis_worker import StreamWorker
from memeswap.inference.observability.metrics import JobMetrics

if TYPE_CHECKING:
    from memeswap.bot.settings import Settings
    from memeswap.inference.jobs.blobs import BlobStore
    from memeswap.inference.jobs.contract import InferenceEngine
    from memeswap.inference.meme_maker import MemeMaker


def _url(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url.get_secret_value()


class RedisStreamsBackend:
    name = "redis"
    runs_in_the_bot = False

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.redis_url is not None

    @staticmethod
    def blob_store(settings: Settings) -> BlobStore:
        return RedisBlobStore.from_url(_url(settings), prefix=settings.redis_prefix,
                                       max_blob_bytes=settings.max_blob_bytes,
                                       max_total_bytes=settings.max_blob_store_bytes)

    @staticmethod
    def engine(settings: Settings, blobs: BlobStore, metrics: JobMetrics | None, maker: MemeMaker | None,
               **options: object) -> InferenceEngine:
        options.pop("workers", None)  # workers are separate processes
        return RedisStreamsEngine.from_url(_url(settings), settings.shard_name, keys=StreamKeys(settings.redis_prefix),
                                           retain_s=settings.result_ttl_s, metrics=metrics,
                                           **options)  # type: ignore[arg-type]

    @staticmethod
    def worker(settings: Settings, maker: MemeMaker, blobs: BlobStore, metrics: JobMetrics) -> StreamWorker:
        from memeswap.bot.assembly import run_job_in_this_process
        from memeswap.inference.jobs.isolated_run import ChildProcessRunner
        from memeswap.inference.jobs.redis_protocol import connect

        return StreamWorker(connect(_url(settings)), maker.job_runner(blobs), blobs,
                            StreamKeys(settings.redis_prefix), heartbeat_s=settings.worker_heartbeat_s,
                            stale_after_s=settings.worker_stale_after_s, max_deliveries=settings.worker_max_deliveries,
                            result_ttl_s=settings.result_ttl_s, retain_s=settings.result_ttl_s, metrics=metrics,
                            run_isolated=ChildProcessRunner(functools.partial(run_job_in_this_process, settings)))
