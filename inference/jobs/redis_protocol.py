"""What bot shards and workers agree on in Redis: the key names and the atomic steps of a
job's life, each one Lua script so that no crash can leave a job half-moved.

A job's life in Redis:

- `submit` (shard): checks the user's limits and the queue depth, then XADDs the job to
  the jobs stream and writes its record (a hash) and its first event, `Queued`.
- `take` (worker, after XREADGROUP or XAUTOCLAIM handed it an entry): queued → running.
- `emit` (worker): appends `Started`/`Progress` to the job's event list and publishes it
  on the shard's progress channel; answers -1 once the job has ended (cancelled, past its
  deadline), which is how a running worker learns to stop.
- `finish` (worker, or the shard for cancel and deadline): the first final event wins.
  It goes to the job's event list and to the shard's durable results stream, the user's
  in-flight count drops, and the jobs-stream entry is acknowledged and deleted. Every
  later `finish` of the same job id does nothing: this is what makes at-least-once
  delivery give the user exactly one reply.

The record and event list expire `retain_s` after the job ends; the stream entries are
deleted when the job ends, so the jobs stream holds only unfinished work.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memeswap.inference.jobs.contract import Event, SwapJob, event_to_json

WORKER_GROUP = "workers"
SHARD_GROUP = "shard"
RESULTS_MAXLEN = 10_000


@dataclass(frozen=True)
class StreamKeys:
    """Every Redis key and channel name, under one prefix (several deployments, or test
    runs, can share a server)."""

    prefix: str = "memeswap:"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}jobs"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead"

    @property
    def waiting(self) -> str:
        """Count of submitted jobs no worker has taken yet."""
        return f"{self.prefix}waiting"

    @property
    def workers(self) -> str:
        """Sorted set: worker name → the time (ms) its last heartbeat stops vouching for it."""
        return f"{self.prefix}workers"

    @property
    def durations(self) -> str:
        """The last few job run times, for "try again in about N s"."""
        return f"{self.prefix}durations"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}events:{job_id}"

    def active(self, user_key: str) -> str:
        return f"{self.prefix}active:{user_key}"

    def user_jobs(self, user_key: str) -> str:
        """Set: the ids of the user's unfinished jobs, from every shard (for "forget me")."""
        return f"{self.prefix}user-jobs:{user_key}"

    def bucket(self, user_key: str) -> str:
        return f"{self.prefix}bucket:{user_key}"

    def results(self, shard: str) -> str:
        return f"{self.prefix}results:{shard}"

    def progress_channel(self, shard: str) -> str:
        return f"{self.prefix}progress:{shard}"


# KEYS: job, events, jobs stream, waiting, active, bucket, user's jobs
# ARGV: job json, job id, shard, user, keep ms, max queue, per-user concurrency,
#       tokens per minute, burst
SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'job') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'queued' then
    return {'queued', tostring(math.max(0, tonumber(redis.call('GET', KEYS[4]) or '1') - 1))}
  end
  return {'known'}
end
local active = tonumber(redis.call('GET', KEYS[5]) or '0')
if active >= tonumber(ARGV[7]) then return {'user_busy', tostring(active)} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[8]) / 60
local burst = tonumber(ARGV[9])
local tokens = burst
local bucket = redis.call('HMGET', KEYS[6], 'tokens', 'updated')
if bucket[1] then
  tokens = math.min(burst, tonumber(bucket[1]) + (now - tonumber(bucket[2])) * rate)
end
if tokens < 1 then return {'rate', tostring((1 - tokens) / rate)} end
local waiting = tonumber(redis.call('GET', KEYS[4]) or '0')
if waiting >= tonumber(ARGV[6]) then return {'busy', tostring(waiting)} end
redis.call('HSET', KEYS[6], 'tokens', tostring(tokens - 1), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[6], math.ceil(burst / rate) + 60)
redis.call('INCR', KEYS[5])
redis.call('PEXPIRE', KEYS[5], ARGV[5])
redis.call('SADD', KEYS[7], ARGV[2])
redis.call('PEXPIRE', KEYS[7], ARGV[5])
redis.call('INCR', KEYS[4])
local entry = redis.call('XADD', KEYS[3], '*', 'job_id', ARGV[2], 'shard', ARGV[3], 'job', ARGV[1])
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'shard', ARGV[3], 'user', ARGV[4], 'state', 'queued',
           'entry', entry)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('RPUSH', KEYS[2], '{"kind":"queued","position":' .. waiting .. '}')
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'queued', tostring(waiting)}
"""

# KEYS: job, waiting.  ARGV: worker name, times delivered
# Returns the state before: queued (also for a repeat of this worker's own take), running (a
# redelivery: its worker vanished mid-run),
# released (a redelivery: its worker stopped and gave it back), finished, or missing.
TAKE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if tonumber(ARGV[2]) <= 1 and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
    redis.call('DECR', KEYS[2])
  end
  return 'missing'
end
if state == 'finished' then return state end
if state == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[1] then return 'queued' end
if state == 'queued' then redis.call('DECR', KEYS[2]) end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[1])
return state
"""

# KEYS: job.  ARGV: worker name
# A worker that stops with a job unfinished gives it back: the next delivery is then not
# taken for one whose worker vanished.
RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'worker') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'released')
end
return 0
"""

# KEYS: job, events.  ARGV: event json, progress channel, job id
# Returns the event's position, -1 once the job has ended, -2 when its record is gone (a
# Redis that came back empty): the worker goes on, and its finish writes the record back.
EMIT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -2 end
if state ~= 'running' then return -1 end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1]) - 1
redis.call('PUBLISH', ARGV[2], cjson.encode({job_id = ARGV[3], seq = seq, event = ARGV[1]}))
return seq
"""

# KEYS: job, events, results stream, waiting, active, jobs stream, dead-letter stream, user's jobs
# ARGV: final event json, job id, retain ms, worker group, dead-letter reason ('' for
#       none), times delivered, the jobs-stream entry id when the caller holds one (''),
#       stream length cap, the job's json ('' unless the caller knows the job is unfinished),
#       shard, user, the caller's id for this finish (the same when it tries again)
# Returns 1 when this call ended the job (or a repeat of the call that did), 0 when it had
# already ended otherwise (or is unknown).
# A job whose record is gone (a Redis that came back empty, a failover, a flush) still ends
# when its caller knows it never finished and passes its json: the record is written back,
# finished, so the job ends exactly once and its shard hears of it.
FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'finished' and redis.call('HGET', KEYS[1], 'finisher') == ARGV[12] then return 1 end
if state == 'finished' or (not state and ARGV[9] == '') then
  if ARGV[7] ~= '' then
    redis.pcall('XACK', KEYS[6], ARGV[4], ARGV[7])
    redis.pcall('XDEL', KEYS[6], ARGV[7])
  end
  return 0
end
local entry = redis.call('HGET', KEYS[1], 'entry') or ARGV[7]
if not state then
  redis.call('HSET', KEYS[1], 'job', ARGV[9], 'shard', ARGV[10], 'user', ARGV[11])
end
if state == 'queued' then redis.call('DECR', KEYS[4]) end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1]) - 1
redis.call('HSET', KEYS[1], 'state', 'finished', 'final', ARGV[1], 'finisher', ARGV[12])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('DECR', KEYS[5]) <= 0 then redis.call('DEL', KEYS[5]) end
redis.call('SREM', KEYS[8], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'job_id', ARGV[2], 'seq', seq, 'event', ARGV[1])
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[8], '*', 'job_id', ARGV[2], 'reason', ARGV[5],
             'deliveries', ARGV[6], 'job', redis.call('HGET', KEYS[1], 'job'))
end
if entry ~= '' then
  redis.pcall('XACK', KEYS[6], ARGV[4], entry)
  redis.pcall('XDEL', KEYS[6], entry)
end
return 1
"""


class JobSteps:
    """The scripts above, bound to one client and key prefix; shards and workers both use it."""

    def __init__(self, client: Redis, keys: StreamKeys, retain_s: float) -> None:
        self.client = client
        self.keys = keys
        self.retain_ms = int(retain_s * 1000)
        self._submit = client.register_script(SUBMIT)
        self._take = client.register_script(TAKE)
        self._emit = client.register_script(EMIT)
        self._release = client.register_script(RELEASE)
        self._finish = client.register_script(FINISH)

    async def persistence_warning(self) -> str | None:
        """One line when this Redis keeps nothing on disk (no AOF, no RDB save points): a
        Redis restart then loses every queued job and every result not yet delivered. None
        when it persists, or when CONFIG is not allowed (a managed Redis: it says nothing)."""
        try:
            config = await self.client.config_get("appendonly")
            config.update(await self.client.config_get("save"))
        except Exception:  # noqa: BLE001 (CONFIG renamed or refused)
            return None
        text = {_text(key): _text(value) for key, value in config.items()}
        if text.get("appendonly") == "yes" or text.get("save", "").strip():
            return None
        return ("Redis keeps no data on disk (appendonly no, no save points): a Redis restart loses queued "
                "jobs and undelivered results; see the README's \"What survives what\"")

    async def ensure_groups(self, *shards: str) -> None:
        """Create the worker group on the jobs stream and the shards' results groups.

        From id 0, so jobs added before the first worker ever started are not skipped.
        """
        streams = [(self.keys.jobs, WORKER_GROUP)] + [(self.keys.results(s), SHARD_GROUP) for s in shards]
        for stream, group in streams:
            try:
                await self.client.xgroup_create(stream, group, id="0", mkstream=True)
            except Exception as error:  # BUSYGROUP: it exists already
                if "BUSYGROUP" not in str(error):
                    raise

    async def submit(self, job: SwapJob, shard: str, keep_s: float, max_queue: int, per_user_concurrency: int,
                     rate_per_minute: float, burst: float) -> list[str]:
        k = self.keys
        reply = await self._submit(
            keys=[k.job(job.job_id), k.events(job.job_id), k.jobs, k.waiting, k.active(job.user_key),
                  k.bucket(job.user_key), k.user_jobs(job.user_key)],
            args=[job.to_json(), job.job_id, shard, job.user_key, int(keep_s * 1000), max_queue,
                  per_user_concurrency, rate_per_minute, burst])
        return [redis_text(part) for part in reply]

    async def take(self, job_id: str, worker: str, deliveries: int) -> str:
        return redis_text(await self._take(keys=[self.keys.job(job_id), self.keys.waiting], args=[worker, deliveries]))

    async def release(self, job_id: str, worker: str) -> None:
        await self._release(keys=[self.keys.job(job_id)], args=[worker])

    async def emit(self, job_id: str, shard: str, event: Event) -> int:
        """Append a non-final event; -1 when the job has already ended, -2 when its record is gone."""
        return int(await self._emit(keys=[self.keys.job(job_id), self.keys.events(job_id)],
                                    args=[event_to_json(event), self.keys.progress_channel(shard), job_id]))

    async def finish(self, job_id: str, shard: str, user_key: str, final: Event, dead_reason: str = "",
                     deliveries: int = 0, entry: str = "", unfinished: SwapJob | None = None,
                     caller: str | None = None) -> bool:
        """End the job with `final` unless it has ended already; True when this call ended it.

        `unfinished`: the job, from a caller that knows it has not ended (its worker, the shard
        that follows it); the job then ends even if Redis lost its record. `caller`: an id the
        caller uses again when it tries again after an outage, so that it learns it was the
        one that ended the job (one is made up per call when not given).
        """
        k = self.keys
        ended = await self._finish(
            keys=[k.job(job_id), k.events(job_id), k.results(shard), k.waiting, k.active(user_key), k.jobs,
                  k.dead_letters, k.user_jobs(user_key)],
            args=[event_to_json(final), job_id, self.retain_ms, WORKER_GROUP, dead_reason, deliveries, entry,
                  RESULTS_MAXLEN, unfinished.to_json() if unfinished else "", shard, user_key,
                  caller or uuid.uuid4().hex])
        return ended == 1


def connect(url: str) -> Redis:
    """A client for shards and workers. A command on a pooled connection that turns out dead
    (the first one after a Redis restart) is sent again, after 50-500 ms, on a new one: every
    step above gives the same answer when repeated (a repeated submit or take is recognised,
    a repeated finish answers 1 again), so a reply lost with its connection does no harm."""
    return Redis.from_url(url, retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2))


def is_outage(error: BaseException) -> bool:
    """Redis is unreachable, still loading its data, or a replica after a failover: wait and
    try again. (BusyLoadingError is a ConnectionError.)"""
    return isinstance(error, RedisConnectionError | RedisTimeoutError | ReadOnlyError)


def lost_group(error: BaseException) -> bool:
    """A stream's consumer group is gone: Redis came back without its data, or the stream
    was deleted under a blocked read (UNBLOCKED)."""
    return isinstance(error, ResponseError) and str(error).startswith(("NOGROUP", "UNBLOCKED"))


class Outage:
    """Backoff with full jitter while Redis cannot be reached, and what /healthz says meanwhile.
    (`bot.startup_wait` uses its backoff too, for the database and Redis a process waits for at start.)"""

    def __init__(self, base_s: float = 0.2, cap_s: float = 5.0, jitter: Callable[[], float] = random.random) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._jitter = jitter
        self._tries = 0
        self.since: float | None = None  # monotonic
        self.error = ""

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> float:
        """Note one failed try; returns how long to wait before the next."""
        if self.since is None:
            self.since = time.monotonic()
        self.error = " ".join(str(error).split())[:200] or type(error).__name__
        self._tries += 1
        return self._jitter() * min(self.cap_s, self.base_s * 2 ** min(self._tries, 16))

    def recovered(self) -> float | None:
        """Note a try that worked; returns how long the outage lasted, None if there was none."""
        lasted = None if self.since is None else time.monotonic() - self.since
        self.since, self._tries, self.error = None, 0, ""
        return lasted

    def health(self) -> dict:
        assert self.since is not None, "only asked during an outage"
        return {"ok": False, "status": "degraded",
                "error": f"redis unreachable for {time.monotonic() - self.since:.0f} s: {self.error}"}


StreamEntry = tuple[bytes, dict[bytes, bytes] | None]  # an entry's id and fields (None once trimmed away)


def redis_text(value: bytes | str | int) -> str:
    """A reply as text. These clients leave replies as bytes (no decode_responses), which
    redis-py's types cannot tell: they say bytes or str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def read_entries(reply: Any) -> list[StreamEntry]:
    """The entries in an XREADGROUP reply on one stream; none when the read timed out. The
    reply is RESP2's [[stream, entries]], the protocol these clients speak (redis-py's types
    allow RESP3's dict as well)."""
    return reply[0][1] if reply else []


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
