"""What only the Redis Streams engine does: workers in processes of their own that die
mid-job (kill -9), dead letters, a shard that restarts, the heartbeat that keeps a long
job on its live worker, and entries this build cannot read."""

import asyncio
import random
import time

import pytest
from redis.asyncio import Redis

from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.contract import Failed, Progress, Succeeded
from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.jobs.redis_worker import DEAD_LETTER_MESSAGE, StreamWorker
from tests.inference.jobs.engine_harness import Jobs, collect, job, kinds, until
from tests.inference.jobs.worker_processes import WorkerProcesses

GENEROUS = {"per_user_concurrency": 10_000, "per_user_rate": (1e6, 1e6), "max_queue": 10_000}


@pytest.fixture
def processes(redis_url, redis_prefix):
    workers = WorkerProcesses(redis_url, redis_prefix)
    yield workers
    workers.stop_all()


def shard(redis_url: str, prefix: str, name: str = "shard-a", **options) -> RedisStreamsEngine:
    return RedisStreamsEngine.from_url(redis_url, name, keys=StreamKeys(prefix), **{**GENEROUS, **options})


async def results_per_job(redis_url: str, keys: StreamKeys, shard_name: str = "shard-a") -> dict[str, int]:
    client = Redis.from_url(redis_url)
    try:
        counts: dict[str, int] = {}
        for _, fields in await client.xrange(keys.results(shard_name)):
            job_id = fields[b"job_id"].decode()
            counts[job_id] = counts.get(job_id, 0) + 1
        return counts
    finally:
        await client.aclose()


def test_a_worker_killed_mid_job_is_replaced_and_the_caller_gets_one_success(redis_url, redis_prefix, processes):
    blobs = RedisBlobStore.from_url(redis_url, prefix=redis_prefix)

    async def main():
        first = processes.spawn()
        async with shard(redis_url, redis_prefix) as engine:
            await engine.submit(job("long", template="slow", selfie_ref="me"))
            events = []
            async for event in engine.events("long"):
                events.append(event)
                if isinstance(event, Progress) and event.done == 5 and processes.killed == 0:
                    processes.kill(first)  # mid-job, after a quarter of the work
                    processes.spawn()
            return events, await results_per_job(redis_url, engine.keys)

    events, results = asyncio.run(asyncio.wait_for(main(), 30))
    assert kinds(events).count("started") == 2  # the job ran again on the new worker
    assert kinds(events).count("succeeded") == 1 and isinstance(events[-1], Succeeded)
    assert blobs.get(events[-1].result_ref) == b"long|me"
    assert results == {"long": 1}


def test_200_jobs_over_4_workers_with_random_kills_lose_nothing_and_repeat_nothing(redis_url, redis_prefix,
                                                                                     processes):
    blobs = RedisBlobStore.from_url(redis_url, prefix=redis_prefix)
    rng = random.Random(4)
    ids = [f"job{i:03d}" for i in range(200)]

    async def chaos(done: asyncio.Event) -> None:
        while not done.is_set() and processes.killed < 8:
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            processes.kill(rng.choice(sorted(processes.alive)))
            processes.spawn()

    async def main():
        for _ in range(4):
            processes.spawn()
        async with shard(redis_url, redis_prefix) as engine:
            for i, job_id in enumerate(ids):
                await engine.submit(job(job_id, user=f"telegram:{i % 7}", selfie_ref=f"face{i}"))
            done = asyncio.Event()
            killer = asyncio.create_task(chaos(done))
            finals = await asyncio.gather(*(collect(engine, job_id, timeout=90) for job_id in ids))
            done.set()
            await killer
            client = Redis.from_url(redis_url)
            left = (await client.xlen(engine.keys.jobs), await client.xlen(engine.keys.dead_letters),
                    int(await client.get(engine.keys.waiting) or 0))
            await client.aclose()
            return finals, await results_per_job(redis_url, engine.keys), left

    finals, results, left = asyncio.run(main())
    assert processes.killed >= 4
    assert sum(kinds(events).count("started") for events in finals) > len(ids), "no kill landed mid-job"
    for i, (job_id, events) in enumerate(zip(ids, finals)):
        assert kinds(events).count("succeeded") == 1 and isinstance(events[-1], Succeeded), (job_id, events)
        assert blobs.get(events[-1].result_ref) == f"{job_id}|face{i}".encode()
    assert results == {job_id: 1 for job_id in ids}  # one final each in the durable stream
    assert left == (0, 0, 0)  # no job left in the stream, none dead-lettered, nothing counted as waiting


def test_a_job_that_kills_its_process_is_dead_lettered_after_taking_one_worker(redis_url, redis_prefix, processes):
    async def main():
        for _ in range(2):
            processes.spawn()
        async with shard(redis_url, redis_prefix) as engine:
            await engine.submit(job("doomed", template="kills-its-worker"))
            await engine.submit(job("fine"))
            follow = asyncio.create_task(collect(engine, "doomed", timeout=40))
            while not follow.done():
                processes.replace_the_dead()
                await asyncio.sleep(0.05)
            client = Redis.from_url(redis_url)
            dead = await client.xrange(engine.keys.dead_letters)
            await client.aclose()
            return follow.result(), await collect(engine, "fine", timeout=10), dead

    doomed, fine, dead = asyncio.run(main())
    assert doomed[-1] == Failed(code="dead_letter", message=DEAD_LETTER_MESSAGE, retryable=False)
    assert isinstance(fine[-1], Succeeded)
    # The first run took its worker down; the second ran in a child process, which died
    # instead of the second worker.
    assert processes.started == 3 and len(processes.alive) == 2
    assert len(dead) == 1
    fields = {k.decode(): v.decode() for k, v in dead[0][1].items()}
    assert fields["job_id"] == "doomed" and fields["deliveries"] == "2"
    assert fields["reason"] == "the process running the job was killed by SIGKILL"
    assert '"template":"kills-its-worker"' in fields["job"]


def test_workers_killed_under_a_job_again_and_again_do_not_make_it_poison(redis_url, redis_prefix, processes):
    """Only the job's own doing counts against it: a job whose worker is killed from outside
    (a deploy, a drained node) three times still ends in its result, not in a dead letter."""
    blobs = RedisBlobStore.from_url(redis_url, prefix=redis_prefix)

    async def main():
        processes.spawn()
        async with shard(redis_url, redis_prefix) as engine:
            await engine.submit(job("innocent", template="slow", selfie_ref="me"))
            events = []
            async for event in engine.events("innocent"):
                events.append(event)
                if isinstance(event, Progress) and event.done == 3 and processes.killed < 3:
                    holder = await running_worker(redis_url, engine.keys, "innocent")
                    processes.kill(holder)  # with the child process running the job, if any
                    processes.spawn()
            client = Redis.from_url(redis_url)
            dead = await client.xlen(engine.keys.dead_letters)
            await client.aclose()
            return events, dead

    events, dead = asyncio.run(asyncio.wait_for(main(), 60))
    assert processes.killed == 3
    assert kinds(events).count("started") == 4
    assert isinstance(events[-1], Succeeded), events[-1]
    assert blobs.get(events[-1].result_ref) == b"innocent|me"
    assert dead == 0


async def running_worker(redis_url: str, keys: StreamKeys, job_id: str) -> str:
    client = Redis.from_url(redis_url)
    try:
        return (await client.hget(keys.job(job_id), "worker")).decode()
    finally:
        await client.aclose()


def test_a_restarted_shard_still_hands_over_the_final_once(redis_url, redis_prefix, tmp_path):
    jobs = Jobs(steps=5, step_s=0.02)
    keys = StreamKeys(redis_prefix)
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def main():
        async with shard(redis_url, redis_prefix, "shard-r") as first:
            await first.submit(job("r1", template="slow").model_copy(update={"reply_to": "telegram:chat:5"}))
        # the shard is down; a worker finishes the job meanwhile
        stop = asyncio.Event()
        client = Redis.from_url(redis_url)
        worker = asyncio.create_task(StreamWorker(client, jobs.stepping, blobs, keys, heartbeat_s=0.1,
                                                  stale_after_s=0.5).run(stop))
        await until(lambda: jobs.started == ["r1"])
        handed: list = []

        async def post(job, event):
            handed.append((job.job_id, job.reply_to, event.kind))

        await asyncio.sleep(0.3)
        async with shard(redis_url, redis_prefix, "shard-r", on_unfollowed_final=post):
            await until(lambda: handed, timeout=5)
        again: list = []

        async def post_again(job, event):
            again.append(job.job_id)

        async with shard(redis_url, redis_prefix, "shard-r", on_unfollowed_final=post_again) as third:
            await asyncio.sleep(0.5)
            replay = await collect(third, "r1")  # asking about it still works
        stop.set()
        await worker
        await client.aclose()
        return handed, again, replay

    handed, again, replay = asyncio.run(main())
    assert handed == [("r1", "telegram:chat:5", "succeeded")]
    assert again == []  # acknowledged once handed over: not offered twice
    assert kinds(replay)[0] == "queued" and kinds(replay)[-1] == "succeeded"


def test_the_heartbeat_keeps_a_long_job_on_its_live_worker(redis_url, redis_prefix, tmp_path):
    jobs = Jobs()
    keys = StreamKeys(redis_prefix)
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def main():
        stop = asyncio.Event()
        clients = [Redis.from_url(redis_url) for _ in range(2)]
        workers = [asyncio.create_task(StreamWorker(c, jobs.gated, blobs, keys, name=f"w{i}", heartbeat_s=0.1,
                                                    stale_after_s=0.4).run(stop)) for i, c in enumerate(clients)]
        async with shard(redis_url, redis_prefix) as engine:
            await engine.submit(job("long"))
            await until(lambda: jobs.started)
            await asyncio.sleep(1.5)  # well past stale_after_s, with the other worker looking for stale work
            jobs.gate.set()
            events = await collect(engine, "long")
        stop.set()
        await asyncio.gather(*workers)
        for c in clients:
            await c.aclose()
        return events

    events = asyncio.run(main())
    assert jobs.started == ["long"]
    assert kinds(events).count("started") == 1 and isinstance(events[-1], Succeeded)


def test_an_unreadable_entry_is_set_aside_and_work_goes_on(redis_url, redis_prefix, tmp_path):
    jobs = Jobs(steps=1, step_s=0)
    keys = StreamKeys(redis_prefix)

    async def main():
        client = Redis.from_url(redis_url)
        stop = asyncio.Event()
        async with shard(redis_url, redis_prefix) as engine:  # creates the stream and group
            await client.xadd(keys.jobs, {"job_id": "x", "shard": "shard-a", "job": '{"version": 99}'})
            worker = asyncio.create_task(StreamWorker(client, jobs.stepping, LocalBlobStore(tmp_path), keys,
                                                      heartbeat_s=0.1, stale_after_s=0.5).run(stop))
            await engine.submit(job("ok"))
            events = await collect(engine, "ok")
            dead = await client.xrange(keys.dead_letters)
            left = await client.xlen(keys.jobs)
        stop.set()
        await worker
        await client.aclose()
        return events, dead, left

    events, dead, left = asyncio.run(main())
    assert isinstance(events[-1], Succeeded)
    assert len(dead) == 1 and b"unsupported job version 99" in dead[0][1][b"reason"]
    assert left == 0


def test_jobs_wait_in_redis_until_a_worker_comes(redis_url, redis_prefix, tmp_path):
    """Submitting needs no live worker: the job waits in the stream, and its queue position
    and the deadline still hold."""
    jobs = Jobs(steps=1, step_s=0)
    keys = StreamKeys(redis_prefix)

    async def main():
        async with shard(redis_url, redis_prefix) as engine:
            await engine.submit(job("early"))
            await engine.submit(job("expires", deadline_s=0.2))
            expired = await collect(engine, "expires")
            stop = asyncio.Event()
            client = Redis.from_url(redis_url)
            began = time.monotonic()
            worker = asyncio.create_task(StreamWorker(client, jobs.stepping, LocalBlobStore(tmp_path), keys,
                                                      heartbeat_s=0.1, stale_after_s=0.5).run(stop))
            early = await collect(engine, "early")
            waited = time.monotonic() - began
            stop.set()
            await worker
            await client.aclose()
            return early, expired, waited

    early, expired, waited = asyncio.run(main())
    assert early[0].position == 0 and isinstance(early[-1], Succeeded)
    assert expired[0].position == 1 and expired[-1].code == "deadline"
    assert jobs.started == ["early"] and waited < 2.0


def test_a_shard_stops_a_users_jobs_that_another_shard_submitted(redis_url, redis_prefix, tmp_path):
    """"Forget me" on one bot process reaches the person's jobs submitted through another:
    both follow the same per-user set in Redis, and the reason travels in the final event."""
    forgotten = Failed(code="forgotten", message="cancelled because you asked me to forget you", retryable=False)

    async def main():
        async with shard(redis_url, redis_prefix, "shard-a") as a, shard(redis_url, redis_prefix, "shard-b") as b:
            await a.submit(job("from-a", user="discord:5"))
            await a.submit(job("someone-else", user="discord:6"))
            following = asyncio.create_task(collect(a, "from-a"))
            listed = [j.job_id for j in await b.unfinished_jobs("discord:5")]
            stopped = [await b.cancel(job_id, forgotten) for job_id in listed]
            return listed, stopped, await following, await b.unfinished_jobs("discord:5"), \
                [j.job_id for j in await b.unfinished_jobs("discord:6")]

    listed, stopped, events, left, others = asyncio.run(main())
    assert listed == ["from-a"] and stopped == [True]
    assert events == [events[0], forgotten] and events[0].kind == "queued"  # no worker: it never started
    assert left == [] and others == ["someone-else"]


def test_consumers_of_workers_that_are_gone_are_removed(redis_url, redis_prefix, tmp_path):
    """Every worker start adds a consumer to the group; those of workers that are gone, holding
    nothing, are removed by the live workers; one holding an entry stays until it is taken over."""
    jobs = Jobs(steps=1, step_s=0)
    keys = StreamKeys(redis_prefix)

    async def main():
        client = Redis.from_url(redis_url)
        stop = asyncio.Event()
        async with shard(redis_url, redis_prefix) as engine:  # creates the stream and group
            for name in ("gone-1", "gone-2", "gone-3"):  # read nothing: consumers holding nothing
                await client.xreadgroup("workers", name, {keys.jobs: ">"}, count=1, block=10)
            await engine.submit(job("held"))
            await client.xreadgroup("workers", "gone-holding", {keys.jobs: ">"}, count=1)  # then died with it
            await asyncio.sleep(0.6)  # longer than stale_after_s: all four look dead
            worker = StreamWorker(client, jobs.stepping, LocalBlobStore(tmp_path), keys, heartbeat_s=0.1,
                                  stale_after_s=0.5)
            running = asyncio.create_task(worker.run(stop))
            events = await collect(engine, "held", timeout=10)
            await until(lambda: worker.jobs_done >= 1, 5)
            await asyncio.sleep(0.8)  # a reclaim pass after the held entry was taken over
            names = {c["name"].decode() for c in await client.xinfo_consumers(keys.jobs, "workers")}
        stop.set()
        await running
        await client.aclose()
        return events, names, worker.name

    events, names, worker_name = asyncio.run(main())
    assert isinstance(events[-1], Succeeded)  # the dead consumer's entry was taken over and finished
    assert names == {worker_name}


def test_a_redis_that_keeps_nothing_on_disk_is_named_once_at_start(redis_url, redis_prefix, tmp_path, caplog):
    """The test server runs without AOF or save points: a worker says so in one line when it
    starts; with AOF on, nothing is said."""
    from memeswap.inference.jobs.redis_protocol import JobSteps

    keys = StreamKeys(redis_prefix)

    async def main():
        client = Redis.from_url(redis_url)
        stop = asyncio.Event()
        with caplog.at_level("WARNING", logger="memeswap.worker"):
            worker = asyncio.create_task(StreamWorker(client, Jobs(steps=1, step_s=0).stepping, LocalBlobStore(tmp_path),
                                                      keys, heartbeat_s=0.1, stale_after_s=0.5).run(stop))
            await asyncio.sleep(0.3)
            stop.set()
            await worker
        await client.config_set("appendonly", "yes")
        try:
            with_aof = await JobSteps(client, keys, retain_s=60).persistence_warning()
        finally:
            await client.config_set("appendonly", "no")
        await client.aclose()
        return with_aof

    with_aof = asyncio.run(main())
    said = [r.getMessage() for r in caplog.records if "keeps no data on disk" in r.getMessage()]
    assert len(said) == 1 and "a Redis restart loses queued jobs" in said[0]
    assert with_aof is None
