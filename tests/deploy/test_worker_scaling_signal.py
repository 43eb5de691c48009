"""What KEDA scales the workers on (deploy/kubernetes/autoscaling.yaml): the length of the jobs
stream, which must count exactly the unfinished jobs, however the others ended. Against the
session's real redis-server, through a shard engine and a `StreamWorker`.

The consumer group's lag is not that number: once the group has read anything, a queued job
that ends before a worker takes it (cancelled, past its deadline) has its entry deleted, and
Redis 7.0 goes on counting it in the lag for good (on 7.0.15 this test ends with the stream
empty and a lag of 2; redis/redis#13337 reports lag errors after deletions on 7.2 too). The lag
is not asserted here: it depends on the Redis version."""

import asyncio

from redis.asyncio import Redis

from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.contract import Succeeded
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from memeswap.inference.jobs.redis_worker import StreamWorker
from tests.inference.jobs.engine_harness import Jobs, collect, job

GENEROUS = {"per_user_concurrency": 10_000, "per_user_rate": (1e6, 1e6), "max_queue": 10_000}


def test_the_jobs_stream_holds_exactly_the_unfinished_jobs(redis_url, redis_prefix, tmp_path):
    jobs = Jobs(steps=1, step_s=0)
    keys = StreamKeys(redis_prefix)
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def worker_until_done(engine, *job_ids: str) -> list:
        stop = asyncio.Event()
        client = Redis.from_url(redis_url)
        worker = asyncio.create_task(StreamWorker(client, jobs.stepping, blobs, keys, heartbeat_s=0.1,
                                                  stale_after_s=0.5).run(stop))
        finals = [(await collect(engine, job_id))[-1] for job_id in job_ids]
        stop.set()
        await worker
        await client.aclose()
        return finals

    async def main() -> dict[str, int]:
        client = Redis.from_url(redis_url)
        lengths = {}
        async with RedisStreamsEngine.from_url(redis_url, "shard-a", keys=keys, **GENEROUS) as engine:
            lengths["shard started, no job yet"] = await client.xlen(keys.jobs)
            await engine.submit(job("first"))
            assert isinstance((await worker_until_done(engine, "first"))[0], Succeeded)
            lengths["first job done"] = await client.xlen(keys.jobs)
            # no worker now: three jobs wait, then two of them end before any worker takes them
            await engine.submit(job("cancelled", user="telegram:2"))
            await engine.submit(job("expires", user="telegram:3", deadline_s=0.3))
            await engine.submit(job("waits", user="telegram:4"))
            lengths["three waiting"] = await client.xlen(keys.jobs)
            await engine.cancel("cancelled")
            assert (await collect(engine, "expires"))[-1].code == "deadline"
            lengths["one cancelled, one expired"] = await client.xlen(keys.jobs)
            assert isinstance((await worker_until_done(engine, "waits"))[0], Succeeded)
            lengths["the last one done"] = await client.xlen(keys.jobs)
        await client.aclose()
        return lengths

    assert asyncio.run(main()) == {
        "shard started, no job yet": 0,  # the shard makes the stream: KEDA finds it before any worker ran
        "first job done": 0,
        "three waiting": 3,
        "one cancelled, one expired": 1,
        "the last one done": 0,  # nothing to do: KEDA takes the workers to zero
    }
    assert jobs.started == ["first", "waits"]
