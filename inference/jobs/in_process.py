"""The default engine: jobs run in a thread pool inside the bot's own process.

Threads rather than processes because the heavy parts of a swap (OpenCV, NumPy, ONNX
Runtime, ffmpeg in its own process) release the GIL, and because the models, loaded once
by whoever builds `run_job`, are then shared by every worker instead of loaded per process.

All engine state is touched only on the event loop; worker threads talk to it through
`loop.call_soon_threadsafe`. A job's events are kept in a list, so a subscriber that
arrives late still reads them all from the start.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from memeswap.inference.jobs.blobs import BlobStore
from memeswap.inference.jobs.contract import (
    CANCELLED,
    RESTARTED,
    Busy,
    CancelToken,
    Event,
    Failed,
    JobCancelled,
    Progress,
    Queued,
    RateLimited,
    Restarting,
    RunJob,
    Started,
    Succeeded,
    SwapJob,
    UnknownJobError,
    deadline_failure,
    failure_event,
)
from memeswap.inference.jobs.event_log import EventLog, wait_until
from memeswap.inference.observability.metrics import JobMetrics

log = logging.getLogger("memeswap.jobs")

@dataclass
class _TokenBucket:
    tokens: float
    updated: float


@dataclass(eq=False)
class _Record:
    """One job as the engine follows it."""

    job: SwapJob
    deadline_s: float
    submitted: float
    token: CancelToken = field(default_factory=CancelToken)
    log: EventLog = field(default_factory=EventLog)
    state: str = "queued"  # queued, running, finished
    position: int = -1
    timer: asyncio.TimerHandle | None = None

    @property
    def finished(self) -> bool:
        return self.state == "finished"


class InProcessEngine:
    """`InferenceEngine` on a pool of `workers` threads.

    Limits, checked in this order at submit: per-user concurrency (queued plus running
    jobs), the per-user token bucket (`per_user_rate` = (tokens per minute, burst)), then
    the queue depth (`max_queue` jobs waiting for a worker). The deadline counts from
    submit, so time spent queued counts too: the user is waiting either way.

    A finished job's events (and so submit's idempotency on its id) are kept for
    `retain_s`; the result blob lives for `result_ttl_s`.
    """

    def __init__(
        self,
        run_job: RunJob,
        blobs: BlobStore,
        workers: int = 1,
        max_queue: int = 32,
        per_user_concurrency: int = 2,
        per_user_rate: tuple[float, float] = (10.0, 5.0),
        default_deadline_s: float = 120.0,
        result_ttl_s: float = 3600.0,
        retain_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: JobMetrics | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._run_job = run_job
        self._blobs = blobs
        self.workers = workers
        self.max_queue = max_queue
        self.per_user_concurrency = per_user_concurrency
        self.rate_per_minute, self.burst = per_user_rate
        self.default_deadline_s = default_deadline_s
        self.result_ttl_s = result_ttl_s
        self.retain_s = retain_s  # how long a finished job's events stay readable
        self._clock = clock

        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._draining = False
        self._jobs: dict[str, _Record] = {}
        self._waiting: deque[_Record] = deque()
        self._busy_threads = 0  # threads still inside a job, cancelled ones included
        self._threads: set[asyncio.Future] = set()
        self._user_active: dict[str, int] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self._durations: deque[float] = deque(maxlen=20)
        self.metrics = metrics or JobMetrics()
        self.metrics.track_queue_depth(lambda: len(self._waiting))
        self.metrics.track_workers(lambda: self._busy_threads)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._pool is None:
            self._loop = asyncio.get_running_loop()
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="swap")

    async def drain(self, grace_s: float, handover_s: float = 5.0) -> None:
        """See `InferenceEngine.drain`; `handover_s` bounds the wait for followers."""
        self._draining = True
        await wait_until(lambda: all(record.finished for record in self._jobs.values()), grace_s)
        for record in list(self._jobs.values()):
            if not record.finished:
                self._stop(record, RESTARTED)
        await wait_until(lambda: all(record.log.following == 0 for record in self._jobs.values()), handover_s)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Fail every unfinished job with `RESTARTED`, stop the workers at their next
        progress check and wait up to `timeout_s` for them."""
        if self._closed:
            return
        self._closed = True
        for record in list(self._jobs.values()):
            if not record.finished:
                record.token.cancel("shutdown")
                self._finish(record, RESTARTED)
        self._waiting.clear()
        if self._threads:
            await asyncio.wait(set(self._threads), timeout=timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for record in self._jobs.values():
            if record.timer:
                record.timer.cancel()

    async def __aenter__(self) -> InProcessEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the contract --------------------------------------------------------------------

    async def submit(self, job: SwapJob) -> None:
        if self._pool is None or self._closed:
            raise RuntimeError("the engine is not running; call start() first")
        if job.job_id in self._jobs:
            return  # idempotent: the first submit already runs or ran it
        if self._draining:
            self.metrics.job_refused(Restarting.code)
            raise Restarting()
        user = job.user_key
        now = self._clock()
        active = self._user_active.get(user, 0)
        if active >= self.per_user_concurrency:
            wait = self._mean_duration()
            self.metrics.job_refused(RateLimited.code)
            raise RateLimited(wait, f"you already have {active} swap{'s' if active != 1 else ''} in progress; "
                                    f"try again in about {max(1, round(wait))} s")
        bucket = self._refill(user, now)
        if bucket.tokens < 1.0:
            self.metrics.job_refused(RateLimited.code)
            raise RateLimited((1.0 - bucket.tokens) * 60.0 / self.rate_per_minute)
        if len(self._waiting) >= self.max_queue:
            self.metrics.job_refused(Busy.code)
            raise Busy(self._queue_wait_estimate())

        bucket.tokens -= 1.0
        self._user_active[user] = active + 1
        record = _Record(job, job.deadline_s or self.default_deadline_s, submitted=now)
        self._jobs[job.job_id] = record
        assert self._loop is not None
        record.timer = self._loop.call_later(record.deadline_s, self._on_deadline, record)
        self._waiting.append(record)
        record.position = len(self._waiting) - 1
        self._emit(record, Queued(position=record.position))
        self._dispatch()

    def events(self, job_id: str) -> AsyncIterator[Event]:
        record = self._jobs.get(job_id)
        if record is None:
            raise UnknownJobError(f"no job with id {job_id!r}")
        return record.log.follow()

    async def cancel(self, job_id: str, final: Failed = CANCELLED) -> bool:
        record = self._jobs.get(job_id)
        if record is None or record.finished:
            return False
        self._stop(record, final)
        return True

    async def unfinished_jobs(self, user_key: str) -> list[SwapJob]:
        return [r.job for r in self._jobs.values() if r.job.user_key == user_key and not r.finished]

    # --- views for health checks, metrics and tests ------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._busy_threads

    async def health(self) -> dict:
        return {"ok": self._pool is not None and not self._closed, "engine": "in_process",
                "queue_depth": len(self._waiting), "running": self._busy_threads, "workers": self.workers}

    # --- internals (all on the event loop) ---------------------------------------------

    def _emit(self, record: _Record, event: Event) -> None:
        record.log.append(event)

    def _finish(self, record: _Record, event: Failed | Succeeded) -> None:
        if record.finished:
            return
        self._emit(record, event)
        record.state = "finished"
        outcome, reason = ("succeeded", "ok") if isinstance(event, Succeeded) else ("failed", event.code)
        self.metrics.job_finished(outcome, reason, self._clock() - record.submitted)
        if record.timer:
            record.timer.cancel()
        user = record.job.user_key
        left = self._user_active.get(user, 1) - 1
        if left > 0:
            self._user_active[user] = left
        else:
            self._user_active.pop(user, None)
        if self._loop is not None and not self._closed:
            self._loop.call_later(self.retain_s, self._forget, record)
        log.info("job %s %s", record.job.job_id, event.kind,
                 extra={"job_id": record.job.job_id, "outcome": getattr(event, "code", event.kind)})

    def _forget(self, record: _Record) -> None:
        if self._jobs.get(record.job.job_id) is record:
            del self._jobs[record.job.job_id]

    def _stop(self, record: _Record, event: Failed) -> None:
        """End a queued or running job now; a running worker stops at its next progress check."""
        if record.state == "queued":
            self._waiting.remove(record)
            self._finish(record, event)
            self._renumber()
        else:
            record.token.cancel(event.code)
            self._finish(record, event)

    def _on_deadline(self, record: _Record) -> None:
        if not record.finished:
            self._stop(record, deadline_failure(record.deadline_s))

    def _dispatch(self) -> None:
        started = False
        while self._waiting and self._busy_threads < self.workers and not self._closed:
            record = self._waiting.popleft()
            record.state = "running"
            self._emit(record, Started())
            self._busy_threads += 1
            assert self._loop is not None and self._pool is not None
            future = self._loop.run_in_executor(self._pool, self._work, record, self._loop)
            self._threads.add(future)
            future.add_done_callback(functools.partial(self._on_done, record))
            started = True
        if started:
            self._renumber()

    def _renumber(self) -> None:
        """Tell each waiting job its new place when the queue moved."""
        for position, record in enumerate(self._waiting):
            if record.position != position:
                record.position = position
                self._emit(record, Queued(position=position))

    def _on_done(self, record: _Record, future: asyncio.Future) -> None:
        self._threads.discard(future)
        self._busy_threads -= 1
        try:
            ref, mime, size, seconds, notices = future.result()
        except BaseException as error:
            failed = failure_event(error)
            if failed.code == "internal":
                log.error("job %s crashed", record.job.job_id, exc_info=error, extra={"job_id": record.job.job_id})
            self._finish(record, failed)
        else:
            self._durations.append(seconds)
            if record.finished:  # cancelled or past its deadline while finishing: drop the result
                self._loop.run_in_executor(None, self._blobs.delete, ref)  # type: ignore[union-attr]
            else:
                self._finish(record, Succeeded(result_ref=ref, mime=mime, size=size, notices=notices))
        self._dispatch()

    def _work(self, record: _Record,
              loop: asyncio.AbstractEventLoop) -> tuple[str, str, int, float, tuple[str, ...]]:
        """Runs in a worker thread."""
        token = record.token

        def progress(done: int, total: int) -> None:
            token.raise_if_cancelled()
            try:
                loop.call_soon_threadsafe(self._emit, record, Progress(done=done, total=total))
            except RuntimeError:  # the loop is gone: nobody is listening any more
                raise JobCancelled("shutdown") from None

        token.raise_if_cancelled()
        began = time.perf_counter()
        self.metrics.stage("queue_wait", self._clock() - record.submitted)
        output = self._run_job(record.job, progress, token)
        seconds = time.perf_counter() - began
        for stage, stage_seconds in output.stages.items():
            self.metrics.stage(stage, stage_seconds)
        token.raise_if_cancelled()
        ref = self._blobs.put(output.data, self.result_ttl_s)
        if token.cancelled:
            self._blobs.delete(ref)
            token.raise_if_cancelled()
        return ref, output.mime, len(output.data), seconds, output.notices

    def _refill(self, user: str, now: float) -> _TokenBucket:
        bucket = self._buckets.get(user)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._prune_buckets(now)
            bucket = self._buckets[user] = _TokenBucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.updated) * self.rate_per_minute / 60.0)
            bucket.updated = now
        return bucket

    def _prune_buckets(self, now: float) -> None:
        """Full buckets carry no information: drop them so the table does not grow forever."""
        for user, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate_per_minute / 60.0 >= self.burst:
                del self._buckets[user]

    def _mean_duration(self) -> float:
        # Before any job finished, guess 10 s: long enough not to invite a retry storm.
        return sum(self._durations) / len(self._durations) if self._durations else 10.0

    def _queue_wait_estimate(self) -> float:
        """Seconds until the jobs waiting now have started, from recent job durations."""
        return max(1.0, len(self._waiting) * self._mean_duration() / self.workers)


class LagProbe:
    """Measures how late the event loop wakes up: the figure that says whether chat
    adapters on this loop still answer in time while jobs run.

    Use as `async with LagProbe() as probe: ...`, then read `probe.max_lag_s`.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    @property
    def max_lag_s(self) -> float:
        return max(self.samples, default=0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.samples.append(max(0.0, loop.time() - before - self.interval_s))

    async def __aenter__(self) -> LagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
