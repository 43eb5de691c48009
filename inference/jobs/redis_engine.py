"""The scale-out engine, as a bot shard sees it: jobs go to a Redis stream that any number
of `StreamWorker`s (`memeswap worker`) consume; events come back to the shard that
submitted them.

Progress arrives by pub/sub (cheap, and fine to lose); the final event arrives through the
shard's own results stream, which is durable: a final that lands while the shard is down
waits there, and the restarted shard (same `shard` name) reads it from its pending
entries and hands it to a follower or to `on_unfollowed_final`. A results entry is
acknowledged only once it was handed over, so a crash between receiving and posting a
result means the result is handed over again, not lost.

Every event also sits, in order, in the job's event list in Redis, so a follower that
subscribes late, or a gap left by a lost pub/sub message, is filled from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from memeswap.inference.jobs.contract import (
    CANCELLED,
    Busy,
    Event,
    Failed,
    JobFormatError,
    Queued,
    RateLimited,
    Restarting,
    ServiceUnavailable,
    Succeeded,
    SwapJob,
    UnknownJobError,
    deadline_failure,
    event_from_json,
)
from memeswap.inference.jobs.event_log import EventLog, wait_until
from memeswap.inference.jobs.redis_protocol import (
    SHARD_GROUP,
    JobSteps,
    Outage,
    StreamKeys,
    connect,
    is_outage,
    lost_group,
    read_entries,
    redis_text,
)
from memeswap.inference.observability.metrics import JobMetrics

log = logging.getLogger("memeswap.jobs")

POLL_S = 0.25  # the longest a read waits in Redis, and so how long close() takes

UnfollowedFinal = Callable[[SwapJob, Succeeded | Failed], Awaitable[None]]


@dataclass(eq=False)
class _Followed:
    """A job this shard follows: one it submitted, or one it was asked about after a restart."""

    job: SwapJob
    submitted: float | None = None  # monotonic; None for jobs adopted after a restart
    log: EventLog = field(default_factory=EventLog)
    followers: int = 0
    timer: asyncio.TimerHandle | None = None
    final_entry: str | None = None  # the results-stream entry of the final event
    answered: bool = False  # the final event is in the log (from Redis, or from this shard in an outage)
    final_read: bool = False  # a follower has handled the final event
    handed_over: bool = False  # ...and its results entry has been acknowledged


class RedisStreamsEngine:
    """`InferenceEngine` for one bot shard on Redis Streams.

    Limits are checked atomically in Redis, so they hold across every shard: per-user
    in-flight jobs, the per-user token bucket, then the queue depth. The deadline counts
    from submit; this shard enforces it with a timer and the worker enforces it too (a
    restarted shard has no timers).
    """

    def __init__(
        self,
        client: Redis,
        shard: str,
        keys: StreamKeys = StreamKeys(),
        max_queue: int = 64,
        per_user_concurrency: int = 2,
        per_user_rate: tuple[float, float] = (10.0, 5.0),
        default_deadline_s: float = 120.0,
        retain_s: float = 900.0,
        metrics: JobMetrics | None = None,
        on_unfollowed_final: UnfollowedFinal | None = None,
        owns_client: bool = False,
    ) -> None:
        if per_user_rate[0] <= 0:
            raise ValueError("the per-user rate must be positive")
        self._client = client
        self.shard = shard
        self.keys = keys
        self.max_queue = max_queue
        self.per_user_concurrency = per_user_concurrency
        self.rate_per_minute, self.burst = per_user_rate
        self.default_deadline_s = default_deadline_s
        self.retain_s = retain_s
        self.metrics = metrics or JobMetrics()
        self.on_unfollowed_final = on_unfollowed_final
        self._owns_client = owns_client
        self._steps = JobSteps(client, keys, retain_s)
        self._jobs: dict[str, _Followed] = {}
        self._inbox: asyncio.Queue[tuple[str, str, int, str, str | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._started = False
        self._closed = False
        self._stopping = asyncio.Event()
        self._draining = False
        self._queue_depth = 0
        self._workers = 0
        self.outage = Outage()
        self.metrics.track_queue_depth(lambda: self._queue_depth)
        self.metrics.track_workers(lambda: self._workers)

    @classmethod
    def from_url(cls, url: str, shard: str, **options) -> RedisStreamsEngine:
        return cls(connect(url), shard, owns_client=True, **options)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        await self._steps.ensure_groups(self.shard)
        warning = await self._steps.persistence_warning()
        if warning:
            log.warning(warning)
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.progress_channel(self.shard))
        self._tasks = [asyncio.create_task(self._apply_events(), name="apply-events"),
                       asyncio.create_task(self._read_results(), name="read-results"),
                       asyncio.create_task(self._listen_progress(pubsub), name="listen-progress"),
                       asyncio.create_task(self._refresh_gauges(), name="refresh-gauges")]
        self._started = True

    async def drain(self, grace_s: float, handover_s: float = 5.0) -> None:
        """See `InferenceEngine.drain`. Jobs still unfinished after `grace_s` are not ended:
        they live on in Redis, and this shard, started again, posts their results."""
        self._draining = True

        def settled() -> bool:
            return all(record.answered or record.followers == 0 for record in self._jobs.values())

        await wait_until(settled, grace_s)
        await wait_until(lambda: all(record.log.following == 0 or not record.answered
                                     for record in self._jobs.values()), handover_s)

    async def close(self) -> None:
        """Stop following. Jobs are not failed: they live on in Redis, and their finals wait
        in this shard's results stream for the next start."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for record in self._jobs.values():
            if record.timer:
                record.timer.cancel()
        # The loops notice `_stopping` within one read (POLL_S). Cancelling a task in the
        # middle of a redis-py command is avoided: it can leave the connection half-closed.
        _, late = await asyncio.wait(self._tasks, timeout=4 * POLL_S) if self._tasks else (set(), set())
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> RedisStreamsEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the contract --------------------------------------------------------------------

    async def submit(self, job: SwapJob) -> None:
        if not self._started or self._closed:
            raise RuntimeError("the engine is not running; call start() first")
        if job.job_id in self._jobs:
            return
        if self._draining:
            self.metrics.job_refused(Restarting.code)
            raise Restarting()
        deadline_s = job.deadline_s if job.deadline_s is not None else self.default_deadline_s
        if job.deadline_s is None:
            job = job.model_copy(update={"deadline_s": deadline_s})
        # Follow before submitting, so a worker's first events cannot arrive unclaimed.
        record = self._jobs[job.job_id] = _Followed(job, submitted=time.monotonic())
        try:
            reply = await self._steps.submit(job, self.shard, deadline_s + self.retain_s, self.max_queue,
                                             self.per_user_concurrency, self.rate_per_minute, self.burst)
        except BaseException as error:
            del self._jobs[job.job_id]
            if isinstance(error, Exception) and is_outage(error):
                self.metrics.job_refused(ServiceUnavailable.code)
                raise ServiceUnavailable() from None
            raise
        status = reply[0]
        if status != "queued":
            del self._jobs[job.job_id]
        if status == "known":
            return  # idempotent: submitted before, by this shard or another
        if status == "user_busy":
            self.metrics.job_refused(RateLimited.code)
            active = int(reply[1])
            wait = await self._mean_duration()
            raise RateLimited(wait, f"you already have {active} swap{'s' if active != 1 else ''} in progress; "
                                    f"try again in about {max(1, round(wait))} s")
        if status == "rate":
            self.metrics.job_refused(RateLimited.code)
            raise RateLimited(float(reply[1]))
        if status == "busy":
            self.metrics.job_refused(Busy.code)
            raise Busy(await self._queue_wait_estimate(int(reply[1])))
        if not record.log.events:  # a worker's events may have filled it in already
            record.log.append(Queued(position=int(reply[1])))
        record.timer = asyncio.get_running_loop().call_later(deadline_s, self._on_deadline, record)

    async def events(self, job_id: str) -> AsyncIterator[Event]:
        record = self._jobs.get(job_id) or await self._adopt(job_id)
        record.followers += 1
        try:
            async for event in record.log.follow(on_final_read=lambda: self._final_read(record)):
                yield event
        finally:
            record.followers -= 1

    async def cancel(self, job_id: str, final: Failed = CANCELLED) -> bool:
        record = self._jobs.get(job_id)
        if record is not None:
            if record.log.finished:
                return False
            return await self._steps.finish(job_id, self.shard, record.job.user_key, final, unfinished=record.job)
        stored_shard, stored_user = await self._client.hmget(self.keys.job(job_id), "shard", "user")
        if stored_shard is None:
            return False
        assert stored_user is not None, "the submit script writes a job's shard and user together"
        return await self._steps.finish(job_id, redis_text(stored_shard), redis_text(stored_user), final)

    async def unfinished_jobs(self, user_key: str) -> list[SwapJob]:
        """Every shard's: the submit script keeps a set of each user's unfinished job ids."""
        jobs = []
        for job_id in sorted(await self._client.smembers(self.keys.user_jobs(user_key))):
            raw, state = await self._client.hmget(self.keys.job(redis_text(job_id)), "job", "state")
            if raw is not None and state in (b"queued", b"running"):
                jobs.append(SwapJob.from_json(raw))
        return jobs

    # --- views for health checks and metrics --------------------------------------------

    @property
    def queue_depth(self) -> int:
        return self._queue_depth

    async def health(self) -> dict:
        try:
            if not self.outage.ongoing:
                await self._client.ping()
        except Exception as error:
            if not is_outage(error):
                return {"ok": False, "status": "degraded", "error": f"redis: {error}"}
            self.outage.failed(error)
        if self.outage.ongoing:
            return {**self.outage.health(), "engine": "redis", "shard": self.shard}
        return {"ok": True, "engine": "redis", "shard": self.shard, "queue_depth": self._queue_depth,
                "workers": self._workers}

    # --- internals -----------------------------------------------------------------------

    async def _adopt(self, job_id: str) -> _Followed:
        """Follow a job this process did not submit: the shard restarted, or an adapter asks
        about a job it stored before. Its events so far come from Redis."""
        fields = await self._client.hgetall(self.keys.job(job_id))
        if not fields:
            raise UnknownJobError(f"no job with id {job_id!r}")
        shard = redis_text(fields[b"shard"])
        if shard != self.shard:
            raise UnknownJobError(f"job {job_id!r} belongs to shard {shard!r}, not {self.shard!r}")
        record = self._jobs.get(job_id)  # adopted meanwhile by the event reader
        if record is None:
            record = self._jobs[job_id] = _Followed(SwapJob.from_json(fields[b"job"]))
            await self._fill(record, job_id, upto=None)
            if record.log.finished:
                self._schedule_forget(record)
        return record

    async def _fill(self, record: _Followed, job_id: str, upto: int | None) -> None:
        """Copy events the log lacks from the job's list in Redis (all of them when `upto` is None)."""
        stop = -1 if upto is None else upto - 1
        if upto is not None and len(record.log) >= upto:
            return
        for raw in await self._client.lrange(self.keys.events(job_id), len(record.log), stop):
            try:
                record.log.append(event_from_json(raw))
            except JobFormatError:
                log.warning("job %s: unreadable event in Redis skipped", job_id, extra={"job_id": job_id})

    async def _read_results(self) -> None:
        """Final events from this shard's durable results stream: first the ones received
        but never handed over before a restart, then new ones."""
        stream = self.keys.results(self.shard)
        position = "0"
        while not self._stopping.is_set():
            try:
                reply = await self._client.xreadgroup(SHARD_GROUP, "main", {stream: position}, count=50,
                                                      block=None if position == "0" else int(POLL_S * 1000))
            except Exception as error:
                await self._ride_out(error)
                continue
            lasted = self.outage.recovered()
            if lasted is not None:
                log.warning("Redis is back after %.1f s", lasted)
            entries = read_entries(reply)
            if position == "0" and not entries:
                position = ">"
            for entry_id, fields in entries:
                if not fields:  # trimmed away meanwhile
                    await self._client.xack(stream, SHARD_GROUP, entry_id)
                    continue
                await self._inbox.put(("final", fields[b"job_id"].decode(), int(fields[b"seq"]),
                                       fields[b"event"].decode(), entry_id.decode()))
            if position == "0" and entries:
                await self._inbox.join()  # handle the backlog before asking again for pending entries

    async def _ride_out(self, error: Exception) -> None:
        """Reading results failed: re-create the group when Redis came back without it, else
        wait (with backoff) for Redis to come back. Jobs keep their deadlines meanwhile."""
        if lost_group(error):
            log.warning("this shard's results group is gone (Redis came back empty?); creating it again")
            with contextlib.suppress(Exception):
                await self._steps.ensure_groups(self.shard)
            return
        if not is_outage(error):
            log.warning("reading results failed (%s); retrying", error)
            await self._pause(1.0)
            return
        if not self.outage.ongoing:
            log.warning("lost Redis (%s); retrying with backoff", " ".join(str(error).split())[:200])
        await self._pause(self.outage.failed(error))

    async def _listen_progress(self, pubsub) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    message = await pubsub.get_message(timeout=POLL_S)
                except Exception as error:  # an outage is logged once, by the results reader
                    log.log(logging.DEBUG if is_outage(error) else logging.WARNING,
                            "progress channel failed (%s); retrying", error)
                    await self._pause(1.0)
                    continue
                if message is None:
                    continue
                payload = json.loads(message["data"])
                await self._inbox.put(("progress", payload["job_id"], int(payload["seq"]), payload["event"], None))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _apply_events(self) -> None:
        """The one task that changes followed jobs' logs, so events apply in order."""
        while not self._stopping.is_set():
            try:
                kind, job_id, seq, raw, entry = await asyncio.wait_for(self._inbox.get(), POLL_S)
            except TimeoutError:
                continue
            try:
                await self._apply(kind, job_id, seq, raw, entry)
            except Exception:
                log.exception("job %s: could not apply a %s event", job_id, kind, extra={"job_id": job_id})
            finally:
                self._inbox.task_done()

    async def _apply(self, kind: str, job_id: str, seq: int, raw: str, entry: str | None) -> None:
        event = event_from_json(raw)
        record = self._jobs.get(job_id)
        if record is None:
            if kind == "progress":
                return  # not ours to follow (yet); the job's list in Redis has it
            try:
                record = await self._adopt(job_id)
            except UnknownJobError:  # expired long ago: still tell whoever listens
                record = None
            if record is None:
                assert entry is not None, "a final event comes with its results entry"
                await self._client.xack(self.keys.results(self.shard), SHARD_GROUP, entry)
                return
        if len(record.log) < seq:
            await self._fill(record, job_id, upto=seq)
        if kind == "progress":
            if len(record.log) == seq:
                record.log.append(event)
            return
        if not record.log.finished:
            record.log.append(event)
        if not record.answered:
            record.final_entry = entry
            self._on_final(record)
        else:  # a second copy of the same final, or one after this shard answered in an outage
            assert entry is not None, "a final event comes with its results entry"
            await self._client.xack(self.keys.results(self.shard), SHARD_GROUP, entry)

    def _on_final(self, record: _Followed) -> None:
        record.answered = True
        final = record.log.events[-1]
        assert isinstance(final, Succeeded | Failed), "the log ends in the final event just applied"
        if record.timer:
            record.timer.cancel()
        if record.submitted is not None:
            outcome, reason = ("succeeded", "ok") if isinstance(final, Succeeded) else ("failed", final.code)
            self.metrics.job_finished(outcome, reason, time.monotonic() - record.submitted)
        log.info("job %s %s", record.job.job_id, final.kind,
                 extra={"job_id": record.job.job_id, "shard": self.shard,
                        "outcome": getattr(final, "code", final.kind)})
        if record.final_read:  # a follower already had it from the job's list in Redis
            self._hand_over(record)
        elif record.followers == 0 and self.on_unfollowed_final is not None:
            asyncio.create_task(self._deliver_unfollowed(record, final))
        self._schedule_forget(record)

    async def _deliver_unfollowed(self, record: _Followed, final: Succeeded | Failed) -> None:
        deliver = self.on_unfollowed_final
        assert deliver is not None, "_on_final hands a final over only when there is a callback"
        try:
            await deliver(record.job, final)
        except Exception:
            log.exception("job %s: handing over the result failed; it will be offered again after a restart",
                          record.job.job_id, extra={"job_id": record.job.job_id})
            return
        self._hand_over(record)

    def _final_read(self, record: _Followed) -> None:
        record.final_read = True
        self._hand_over(record)

    def _hand_over(self, record: _Followed) -> None:
        """The final event reached its reader: acknowledge it in the results stream, once."""
        if record.handed_over or record.final_entry is None or self._closed:
            return
        record.handed_over = True
        asyncio.ensure_future(self._client.xack(self.keys.results(self.shard), SHARD_GROUP, record.final_entry))

    def _schedule_forget(self, record: _Followed) -> None:
        asyncio.get_running_loop().call_later(self.retain_s, self._forget, record)

    def _forget(self, record: _Followed) -> None:
        if self._jobs.get(record.job.job_id) is record:
            del self._jobs[record.job.job_id]
            self._hand_over(record)

    def _on_deadline(self, record: _Followed) -> None:
        if not record.log.finished and not self._closed:
            asyncio.create_task(self._end_at_deadline(record))

    async def _end_at_deadline(self, record: _Followed) -> None:
        """The job's deadline passed: end it in Redis (even if Redis lost its record), so its
        final comes back like any other. When Redis cannot be reached, this shard tells the
        follower itself: every job gets its answer by its deadline."""
        deadline_s = record.job.deadline_s
        assert deadline_s is not None, "submit gives a job its deadline before it sets the timer"
        final = deadline_failure(deadline_s)
        try:
            await asyncio.wait_for(self._steps.finish(record.job.job_id, self.shard, record.job.user_key, final,
                                                      unfinished=record.job), 2.0)
        except Exception as error:  # noqa: BLE001 (whatever went wrong, the user hears by the deadline)
            log.warning("job %s: Redis did not take its deadline failure (%s); answered here",
                        record.job.job_id, " ".join(str(error).split())[:200], extra={"job_id": record.job.job_id})
            if not record.answered and not self._closed:
                record.log.append(final)
                self._on_final(record)

    async def _refresh_gauges(self) -> None:
        while not self._stopping.is_set():
            try:
                waiting = await self._client.get(self.keys.waiting)
                self._queue_depth = int(waiting or 0)
                self._workers = await self._client.zcount(self.keys.workers, int(time.time() * 1000), "+inf")
            except Exception as error:
                log.debug("gauges not refreshed (%s)", error)
            await self._pause(2.0)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the engine closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _mean_duration(self) -> float:
        durations = [float(d) for d in await self._client.lrange(self.keys.durations, 0, -1)]
        return sum(durations) / len(durations) if durations else 10.0

    async def _queue_wait_estimate(self, waiting: int) -> float:
        workers = await self._client.zcount(self.keys.workers, int(time.time() * 1000), "+inf")
        return max(1.0, waiting * await self._mean_duration() / max(1, workers))
