"""Both engines behind one context manager, so the contract suite runs unchanged on each:
the in-process thread pool, and a Redis Streams shard with in-loop `StreamWorker`s
against the session's real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from redis.asyncio import Redis

from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.contract import JobOutput, RunJob, SwapJob
from memeswap.inference.jobs.in_process import InProcessEngine
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.jobs.redis_worker import StreamWorker

RESULT = b"GIF89a-not-really"


def job(job_id: str, user: str = "telegram:1", deadline_s: float | None = None, template: str = "deal-with-it",
        selfie_ref: str = "selfie") -> SwapJob:
    return SwapJob(job_id=job_id, user_key=user, selfie_ref=selfie_ref, template=template, deadline_s=deadline_s)


class Jobs:
    """Fake `run_job` functions that record what ran and how it ended. They sleep in small
    steps and report progress between steps, like the real swap does between frame batches."""

    def __init__(self, steps: int = 4, step_s: float = 0.01) -> None:
        self.steps = steps
        self.step_s = step_s
        self.started: list[str] = []
        self.stopped: list[str] = []  # jobs whose work saw the cancellation
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def _note(self, names: list[str], job_id: str) -> None:
        with self._lock:
            names.append(job_id)

    def stepping(self, job, progress, token) -> JobOutput:
        self._note(self.started, job.job_id)
        for i in range(self.steps):
            time.sleep(self.step_s)
            progress(i + 1, self.steps)
        return JobOutput(RESULT, "image/gif")

    def gated(self, job, progress, token) -> JobOutput:
        """Runs until `gate` opens, reporting (0, 1) while it waits."""
        self._note(self.started, job.job_id)
        try:
            while not self.gate.wait(0.01):
                progress(0, 1)
        except BaseException:
            self._note(self.stopped, job.job_id)
            raise
        progress(1, 1)
        return JobOutput(RESULT, "image/gif")


@contextlib.asynccontextmanager
async def running_engine(kind: str, run_job: RunJob, folder: Path, redis_url: str | None = None,
                         prefix: str = "memeswap:", workers: int = 1, **limits) -> AsyncIterator:
    """Yields (engine, blob store). Generous per-user limits unless the test sets them."""
    limits.setdefault("per_user_concurrency", 10)
    limits.setdefault("per_user_rate", (600.0, 100.0))
    blobs = LocalBlobStore(folder / "blobs")
    if kind == "in_process":
        async with InProcessEngine(run_job, blobs, workers=workers, **limits) as engine:
            yield engine, blobs
        return
    keys = StreamKeys(prefix)
    stop = asyncio.Event()
    clients = [Redis.from_url(redis_url) for _ in range(workers)]
    tasks = [asyncio.create_task(StreamWorker(client, run_job, blobs, keys, name=f"w{i}", heartbeat_s=0.1,
                                              stale_after_s=0.5).run(stop))
             for i, client in enumerate(clients)]
    try:
        async with RedisStreamsEngine.from_url(redis_url, "shard-a", keys=keys, **limits) as engine:
            yield engine, blobs
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=3)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.aclose()


async def collect(engine, job_id: str, timeout: float = 5.0) -> list:
    async def gather() -> list:
        return [event async for event in engine.events(job_id)]
    return await asyncio.wait_for(gather(), timeout)


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]
