"""The job backends memeswap knows. Adding one is one new module in this package with a
class that follows `JobBackend` and one line here. A process uses the first backend whose
settings are there (`configured`), in this order.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from memeswap.bot.settings import Settings
    from memeswap.inference.jobs.blobs import BlobStore
    from memeswap.inference.jobs.contract import InferenceEngine
    from memeswap.inference.jobs.redis_worker import StreamWorker
    from memeswap.inference.meme_maker import MemeMaker
    from memeswap.inference.observability.metrics import JobMetrics

# name -> "module:class"
JOB_BACKENDS: dict[str, str] = {
    "redis": "memeswap.bot.job_backends.redis_streams:RedisStreamsBackend",
    "in-process": "memeswap.bot.job_backends.in_process:InProcessBackend",
}


class JobBackend(Protocol):
    name: str
    runs_in_the_bot: bool  # True: the bot's own process runs the jobs (and loads the swap models)

    @staticmethod
    def configured(settings: Settings) -> bool:
        """The settings this backend needs are there."""

    @staticmethod
    def blob_store(settings: Settings) -> BlobStore: ...

    @staticmethod
    def engine(settings: Settings, blobs: BlobStore, metrics: JobMetrics | None, maker: MemeMaker | None,
               **options: object) -> InferenceEngine:
        """The engine a bot shard submits to; `maker` is None where `runs_in_the_bot` is False."""

    @staticmethod
    def worker(settings: Settings, maker: MemeMaker, blobs: BlobStore, metrics: JobMetrics) -> StreamWorker:
        """`memeswap worker`: raises `InputError` where jobs do not run in workers."""


def backend_class(name: str) -> type[JobBackend]:
    module, _, attribute = JOB_BACKENDS[name].partition(":")
    return getattr(import_module(module), attribute)


def chosen_backend(settings: Settings) -> type[JobBackend]:
    """The first registered backend whose settings are there."""
    for name in JOB_BACKENDS:
        backend = backend_class(name)
        if backend.configured(settings):
            return backend
    raise ValueError("no job backend is configured")  # in-process always is
