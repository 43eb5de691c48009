"""Jobs in a thread pool inside the bot's own process; blobs in the data folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.blobs import BlobStore, LocalBlobStore
from memeswap.inference.jobs.in_process import InProcessEngine

if TYPE_CHECKING:
    from memeswap.bot.settings import Settings
    from memeswap.inference.jobs.contract import InferenceEngine
    from memeswap.inference.jobs.redis_worker import StreamWorker
    from memeswap.inference.meme_maker import MemeMaker
    from memeswap.inference.observability.metrics import JobMetrics


class InProcessBackend:
    name = "in-process"
    runs_in_the_bot = True

    @staticmethod
    def configured(settings: Settings) -> bool:
        return True

    @staticmethod
    def blob_store(settings: Settings) -> BlobStore:
        return LocalBlobStore(settings.blobs_dir)

    @staticmethod
    def engine(settings: Settings, blobs: BlobStore, metrics: JobMetrics | None, maker: MemeMaker | None,
               **options: object) -> InferenceEngine:
        assert maker is not None, "in-process jobs need the models"
        options.setdefault("workers", settings.job_workers)
        return InProcessEngine(maker.job_runner(blobs), blobs, result_ttl_s=settings.result_ttl_s,
                               metrics=metrics, **options)  # type: ignore[arg-type]

    @staticmethod
    def worker(settings: Settings, maker: MemeMaker, blobs: BlobStore, metrics: JobMetrics) -> StreamWorker:
        raise InputError("memeswap worker needs MEMESWAP_REDIS_URL; without Redis the bot runs jobs itself",
                         code="settings")
