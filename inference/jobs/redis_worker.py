"""A worker of the Redis Streams engine: takes one job at a time from the jobs stream,
runs it with the models it loaded once, stores the result and reports back.

Delivery is at-least-once. A worker that dies mid-job leaves its entry pending; once the
entry has sat idle for `stale_after_s`, another worker's XAUTOCLAIM takes it over and runs
the job again. A live worker keeps its entry from looking stale with its heartbeat: every
`heartbeat_s` it renews its own entry in the workers set and resets the idle time of the
entry it is working on (XCLAIM to itself, JUSTID), however long the job runs.

A job whose worker vanished mid-run may be what killed it (a native crash, the OOM
killer), or the worker was simply killed (a deploy, kill -9). Its next run is in a process
of its own (`ChildProcessRunner`): if that process dies, the job is poison and goes to the
dead-letter stream with one clear failure for its user; if the worker dies again, that does
not count against the job. Only an entry delivered more than `max_deliveries` times in all
is given up, as the service's trouble, not the user's.

Redis going away does not stop a worker: it retries with backoff and jitter, says
"degraded" on /healthz meanwhile, re-creates the consumer group when Redis comes back
empty, and keeps the result of the job in hand until it can be delivered (up to the job's
deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from memeswap.inference.jobs.blobs import BlobStore
from memeswap.inference.jobs.contract import (
    CancelToken,
    Failed,
    JobCancelled,
    JobFormatError,
    JobOutput,
    Progress,
    RunJob,
    Started,
    Succeeded,
    SwapJob,
    deadline_failure,
    failure_event,
)
from memeswap.inference.jobs.isolated_run import JobKilledItsProcess
from memeswap.inference.jobs.redis_protocol import (
    WORKER_GROUP,
    JobSteps,
    Outage,
    StreamKeys,
    is_outage,
    lost_group,
    read_entries,
)
from memeswap.inference.observability.metrics import JobMetrics

log = logging.getLogger("memeswap.worker")
# KEYS[1] the jobs stream; ARGV: the group, the caller (never removed), the idle ms past which
# a consumer that holds nothing is gone. Returns the names removed.
FORGET_IDLE_CONSUMERS = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields['name'] ~= ARGV[2] and tonumber(fields['pending']) == 0
      and tonumber(fields['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed[#removed + 1] = fields['name']
  end
end
return removed
"""

T = TypeVar("T")

DEFAULT_DEADLINE_S = 120.0  # shards always set a job's deadline; this covers jobs added by other tools

DEAD_LETTER_MESSAGE = "this swap crashed the swap service and was set aside; try another photo or template"
INTERRUPTED_MESSAGE = "the swap was interrupted too often by the service restarting; please try again in a minute"


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class StreamWorker:
    """Consumes the jobs stream as one member of the worker group."""

    def __init__(
        self,
        client: Redis,
        run_job: RunJob,
        blobs: BlobStore,
        keys: StreamKeys = StreamKeys(),
        name: str | None = None,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 15.0,
        max_deliveries: int = 6,
        result_ttl_s: float = 3600.0,
        retain_s: float = 900.0,
        metrics: JobMetrics | None = None,
        run_isolated: RunJob | None = None,
        outage: Outage | None = None,
    ) -> None:
        """`run_isolated` runs a job in a process of its own (`ChildProcessRunner`), for a
        job whose last worker vanished mid-run; without it such a job runs like any other."""
        if stale_after_s < 3 * heartbeat_s:
            raise ValueError("stale_after_s must be at least three heartbeats, or live workers lose their jobs")
        self._client = client
        self._run_job = run_job
        self._run_isolated = run_isolated
        self.outage = outage or Outage()
        self._blobs = blobs
        self.keys = keys
        self.name = name or default_worker_name()
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.max_deliveries = max_deliveries
        self.result_ttl_s = result_ttl_s
        self.metrics = metrics or JobMetrics(role="worker")
        self._steps = JobSteps(client, keys, retain_s)
        self._forget_idle = client.register_script(FORGET_IDLE_CONSUMERS)
        self._current: tuple[str, SwapJob, CancelToken] | None = None  # entry id, job, token
        self._next_reclaim = 0.0
        self._last_beat = 0.0
        self._groups_ready = False
        self._persistence_checked = False
        # Every job on one thread of its own, so the same thread's malloc arena each time
        # rather than whichever pool thread is free (see `bot.ops.steady_malloc`).
        self._job_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self.jobs_done = 0
        self.metrics.track_workers(lambda: 1)

    @property
    def current_job_id(self) -> str | None:
        return self._current[1].job_id if self._current else None

    async def health(self) -> dict:
        try:
            if not self.outage.ongoing:
                await self._client.ping()
        except Exception as error:
            if not is_outage(error):
                return {"ok": False, "status": "degraded", "error": f"redis: {error}"}
            self._note_outage(error)
        if self.outage.ongoing:
            return {**self.outage.health(), "worker": self.name, "job": self.current_job_id}
        beat_age = time.monotonic() - self._last_beat
        return {"ok": beat_age < self.stale_after_s, "worker": self.name, "job": self.current_job_id,
                "jobs_done": self.jobs_done, "heartbeat_age_s": round(beat_age, 2)}

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Take and run jobs until `stop` is set; the job in hand is finished first."""
        stop = stop or asyncio.Event()
        quit_heartbeat = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat_loop(quit_heartbeat), name="heartbeat")
        log.info("worker %s ready", self.name, extra={"worker": self.name})
        try:
            while not stop.is_set():
                try:
                    await self._prepare()
                    entry = await self._next_entry(block_s=min(1.0, self.heartbeat_s))
                    self._back_from_outage()
                    if entry is not None:
                        await self._handle(*entry)
                except RedisError as error:
                    if lost_group(error):
                        log.warning("the jobs stream's group is gone (Redis came back empty?); creating it again",
                                    extra={"worker": self.name})
                        self._groups_ready = False
                    elif is_outage(error):
                        await self._wait_out(error, stop)
                    else:
                        raise
        finally:
            # Let the heartbeat end between beats: cancelling a redis-py command midway can
            # leave its connection half-closed.
            quit_heartbeat.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(heartbeat), 2.0)
            heartbeat.cancel()
            with contextlib.suppress(Exception):
                await self._client.zrem(self.keys.workers, self.name)
            self._job_thread.shutdown(wait=False, cancel_futures=True)
            log.info("worker %s stopped", self.name, extra={"worker": self.name})

    # --- Redis coming and going -----------------------------------------------------------

    async def _prepare(self) -> None:
        """The consumer group, once at start and again whenever Redis lost it; the
        persistence check once Redis first answers."""
        if self._groups_ready:
            return
        await self._steps.ensure_groups()
        if not self._persistence_checked:
            self._persistence_checked = True
            warning = await self._steps.persistence_warning()
            if warning:
                log.warning(warning, extra={"worker": self.name})
            await self._beat()
        self._groups_ready = True

    def _note_outage(self, error: BaseException) -> float:
        """One log line when an outage begins; returns how long to wait before trying again."""
        if not self.outage.ongoing:
            log.warning("lost Redis (%s); retrying with backoff", " ".join(str(error).split())[:200],
                        extra={"worker": self.name})
        return self.outage.failed(error)

    async def _wait_out(self, error: BaseException, stop: asyncio.Event | None = None) -> None:
        delay = self._note_outage(error)
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def _back_from_outage(self) -> None:
        lasted = self.outage.recovered()
        if lasted is not None:
            log.warning("Redis is back after %.1f s", lasted, extra={"worker": self.name})

    async def _until_delivered(self, job: SwapJob, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` (a coroutine function) until Redis takes it, through an outage, up to
        the job's deadline plus one stale period: by then its shard has answered the user."""
        give_up = self._deadline(job) + self.stale_after_s
        while True:
            try:
                result = await step()
            except RedisError as error:
                if not is_outage(error) or datetime.now(UTC).timestamp() > give_up:
                    raise
                await self._wait_out(error)
                continue
            self._back_from_outage()
            return result

    # --- taking entries ------------------------------------------------------------------

    async def _next_entry(self, block_s: float) -> tuple[str, dict, int] | None:
        """A stale entry of a dead worker if there is one (checked every half `stale_after_s`),
        else a new one. Returns (entry id, fields, times delivered)."""
        now = time.monotonic()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self.stale_after_s / 2
            await self._forget_dead_consumers()
            reply = await self._client.xautoclaim(self.keys.jobs, WORKER_GROUP, self.name,
                                                  min_idle_time=int(self.stale_after_s * 1000),
                                                  start_id="0-0", count=1)
            claimed = reply[1]
            if claimed:
                self._next_reclaim = now  # there may be more
                entry_id, fields = claimed[0]
                pending = await self._client.xpending_range(self.keys.jobs, WORKER_GROUP, min=entry_id,
                                                            max=entry_id, count=1)
                deliveries = int(pending[0]["times_delivered"]) if pending else self.max_deliveries + 1
                log.warning("worker %s reclaimed entry %s (delivery %d)", self.name, entry_id.decode(),
                            deliveries, extra={"worker": self.name})
                return entry_id.decode(), fields, deliveries
        read = await self._client.xreadgroup(WORKER_GROUP, self.name, {self.keys.jobs: ">"}, count=1,
                                             block=int(block_s * 1000))
        entries = read_entries(read)
        if not entries:
            return None
        entry_id, fields = entries[0]
        assert fields is not None, "a new entry has its fields"
        return entry_id.decode(), fields, 1

    async def _forget_dead_consumers(self) -> None:
        """Remove the group's consumers that hold nothing and have not asked for work for
        `stale_after_s` (workers that are gone: a live one asks at least every second, and one
        with a job in hand holds it), so they do not pile up as workers come and go. A
        consumer holding entries stays until XAUTOCLAIM has taken them over. The check and the
        removal are one script: removing a consumer drops what it holds, and a consumer that
        claimed an entry between a separate check and the removal would lose it."""
        removed = await self._forget_idle(keys=[self.keys.jobs],
                                          args=[WORKER_GROUP, self.name, int(self.stale_after_s * 1000)])
        for name in removed:
            log.info("worker %s removed the idle consumer %s", self.name,
                     name.decode() if isinstance(name, bytes) else name, extra={"worker": self.name})

    async def _handle(self, entry_id: str, fields: dict, deliveries: int) -> None:
        text = {key.decode(): value.decode() for key, value in fields.items()}
        job_id, shard = text.get("job_id", ""), text.get("shard", "")
        try:
            job = SwapJob.from_json(text.get("job", ""))
        except JobFormatError as error:
            await self._set_aside(entry_id, text, f"unreadable job: {error}")
            return
        if deliveries > self.max_deliveries:
            log.error("job %s given up after %d deliveries", job_id, deliveries,
                      extra={"job_id": job_id, "worker": self.name})
            await self._finish(job, shard, entry_id, deliveries,
                               Failed(code="interrupted", message=INTERRUPTED_MESSAGE, retryable=True),
                               dead_reason=f"delivered {deliveries} times")
            return
        state = await self._steps.take(job_id, self.name, deliveries)
        if state in ("finished", "missing"):  # cancelled while queued, or long expired
            await self._acknowledge(entry_id)
            return
        remaining = self._deadline(job) - datetime.now(UTC).timestamp()
        if remaining <= 0:
            await self._finish(job, shard, entry_id, deliveries, deadline_failure(job.deadline_s or DEFAULT_DEADLINE_S))
            return
        isolated = state == "running" and self._run_isolated is not None
        if isolated:
            log.warning("job %s: its last worker vanished mid-run; running it in a process of its own", job_id,
                        extra={"job_id": job_id, "worker": self.name})
        await self._run(job, shard, entry_id, deliveries, remaining, isolated)

    # --- running one job -----------------------------------------------------------------

    async def _run(self, job: SwapJob, shard: str, entry_id: str, deliveries: int, remaining_s: float,
                   isolated: bool = False) -> None:
        # `Started` goes out before the work begins, so it precedes every progress event,
        # and a job cancelled in between never starts.
        if await self._steps.emit(job.job_id, shard, Started()) == -1:
            await self._acknowledge(entry_id)
            return
        loop = asyncio.get_running_loop()
        token = CancelToken()
        self._current = (entry_id, job, token)
        self.metrics.stage("queue_wait", max(0.0, datetime.now(UTC).timestamp() - job.created_at.timestamp()))
        outbox: asyncio.Queue[Progress | None] = asyncio.Queue()
        emitter = asyncio.create_task(self._emit_progress(job, shard, outbox, token))
        deadline = loop.call_later(remaining_s, token.cancel, "deadline")

        def progress(done: int, total: int) -> None:
            token.raise_if_cancelled()
            loop.call_soon_threadsafe(outbox.put_nowait, Progress(done=done, total=total))

        began = time.perf_counter()
        final: Succeeded | Failed
        dead_reason = ""
        run_job = self._run_isolated if isolated and self._run_isolated is not None else self._run_job
        output: JobOutput | None = None
        try:
            output = await loop.run_in_executor(self._job_thread, run_job, job, progress, token)
            token.raise_if_cancelled()
            data = output.data
            ref = await self._until_delivered(job, lambda: asyncio.to_thread(self._blobs.put, data, self.result_ttl_s))
            final = Succeeded(result_ref=ref, mime=output.mime, size=len(output.data), notices=output.notices)
        except JobCancelled as stopped:
            final = (deadline_failure(job.deadline_s or DEFAULT_DEADLINE_S) if stopped.reason == "deadline"
                     else failure_event(stopped))
            output = None
        except JobKilledItsProcess as killed:
            log.error("job %s is poison: %s", job.job_id, killed, extra={"job_id": job.job_id, "worker": self.name})
            final = Failed(code="dead_letter", message=DEAD_LETTER_MESSAGE, retryable=False)
            dead_reason = str(killed)
        except asyncio.CancelledError:  # the worker is being stopped: the thread stops at its next check
            token.cancel("shutdown")
            with contextlib.suppress(Exception):  # give it back, so its next run is not taken for a crash
                await asyncio.wait_for(self._steps.release(job.job_id, self.name), 2.0)
            raise
        except Exception as error:
            if isinstance(error, RedisError) and is_outage(error):
                raise  # Redis stayed away past the job's deadline; its shard has answered
            final = failure_event(error)
            output = None
            if final.code == "internal":
                log.error("job %s crashed", job.job_id, exc_info=error,
                          extra={"job_id": job.job_id, "worker": self.name})
        finally:
            deadline.cancel()
            await outbox.put(None)
            await emitter  # every progress event is in the list before the final one
            self._current = None
        seconds = time.perf_counter() - began
        if isinstance(final, Failed) and final.code == "shutdown":
            return  # leave the entry pending: another worker takes it over
        ended = await self._until_delivered(
            job, lambda: self._finish(job, shard, entry_id, deliveries, final, dead_reason))
        if ended and output is not None:
            for stage, stage_seconds in output.stages.items():
                self.metrics.stage(stage, stage_seconds)
            await self._client.lpush(self.keys.durations, f"{seconds:.3f}")
            await self._client.ltrim(self.keys.durations, 0, 19)
        elif not ended and isinstance(final, Succeeded):  # cancelled meanwhile, or another worker won
            await asyncio.to_thread(self._blobs.delete, final.result_ref)

    async def _emit_progress(self, job: SwapJob, shard: str, outbox: asyncio.Queue, token: CancelToken) -> None:
        """Sends the job's events one at a time, in order; a -1 answer means the job ended
        elsewhere (cancelled, past its deadline), so the work stops at its next check."""
        while (event := await outbox.get()) is not None:
            if token.cancelled:
                continue
            try:
                if await self._steps.emit(job.job_id, shard, event) == -1:
                    token.cancel("cancelled")
            except Exception as error:  # progress is best effort; the final event is not
                log.log(logging.DEBUG if is_outage(error) else logging.WARNING, "job %s: progress not sent (%s)",
                        job.job_id, error, extra={"job_id": job.job_id})

    async def _finish(self, job: SwapJob, shard: str, entry_id: str, deliveries: int, final: Failed | Succeeded,
                      dead_reason: str = "") -> bool:
        ended = await self._steps.finish(job.job_id, shard, job.user_key, final, dead_reason=dead_reason,
                                         deliveries=deliveries, entry=entry_id, unfinished=job,
                                         caller=f"{self.name}/{entry_id}/{deliveries}")
        if ended:
            self.jobs_done += 1
            outcome, reason = ("succeeded", "ok") if isinstance(final, Succeeded) else ("failed", final.code)
            self.metrics.job_finished(outcome, reason)
            log.info("job %s %s", job.job_id, reason, extra={"job_id": job.job_id, "worker": self.name,
                                                             "outcome": reason})
        return ended

    async def _set_aside(self, entry_id: str, fields: dict[str, str], reason: str) -> None:
        """An entry this build cannot read goes to the dead letters untouched, for a person to look at."""
        log.error("entry %s set aside: %s", entry_id, reason, extra={"worker": self.name})
        async with self._client.pipeline(transaction=True) as pipe:
            dead = {**fields, "reason": reason[:500], "entry": entry_id}
            # redis-py types xadd's fields as an invariant dict of its own key and value unions
            pipe.xadd(self.keys.dead_letters, dead, maxlen=10_000, approximate=True)  # type: ignore[arg-type]
            pipe.xack(self.keys.jobs, WORKER_GROUP, entry_id)
            pipe.xdel(self.keys.jobs, entry_id)
            await pipe.execute()
        self.metrics.job_finished("failed", "dead_letter")

    async def _acknowledge(self, entry_id: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.jobs, WORKER_GROUP, entry_id)
            pipe.xdel(self.keys.jobs, entry_id)
            await pipe.execute()

    # --- heartbeat -------------------------------------------------------------------------

    async def _heartbeat_loop(self, quit: asyncio.Event) -> None:
        while not quit.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quit.wait(), self.heartbeat_s)
                return
            try:
                await self._beat()
            except Exception as error:
                if not is_outage(error):
                    log.warning("heartbeat failed (%s)", error, extra={"worker": self.name})
                elif not self.outage.ongoing:  # noted here too: the job loop may be busy with a job
                    self._note_outage(error)
            else:
                self._back_from_outage()

    async def _beat(self) -> None:
        now_ms = int(time.time() * 1000)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {self.name: now_ms + int(3 * self.heartbeat_s * 1000)})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms)
            current = self._current
            if current is not None:
                pipe.xclaim(self.keys.jobs, WORKER_GROUP, self.name, 0, [current[0]], justid=True)
                pipe.hget(self.keys.job(current[1].job_id), "state")
            replies = await pipe.execute()
        self._last_beat = time.monotonic()
        if current is not None and replies[-1] not in (b"running", None):  # None: Redis lost the record
            current[2].cancel("cancelled")  # ended elsewhere while the work made no progress

    @staticmethod
    def _deadline(job: SwapJob) -> float:
        return job.created_at.timestamp() + (job.deadline_s or DEFAULT_DEADLINE_S)

