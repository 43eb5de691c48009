"""The `InferenceEngine` contract, run unchanged against both engines: the in-process
thread pool and Redis Streams (a shard plus in-loop workers on a real redis-server)."""

import asyncio
import logging
import re
import time

import pytest

from memeswap.inference.errors import NoFaceError
from memeswap.inference.jobs.contract import (
    INTERNAL_MESSAGE,
    RESTARTED,
    Busy,
    Failed,
    InferenceEngine,
    JobOutput,
    Progress,
    Queued,
    RateLimited,
    Restarting,
    Started,
    Succeeded,
    UnknownJobError,
)
from tests.inference.jobs.engine_harness import RESULT, Jobs, collect, job, kinds, running_engine, until


@pytest.fixture(params=["in_process", "redis"])
def engine(request, tmp_path):
    """`engine(run_job, **options)`: an async context manager yielding (engine, blobs)."""
    kind = request.param
    redis = {} if kind == "in_process" else {"redis_url": request.getfixturevalue("redis_url"),
                                             "prefix": request.getfixturevalue("redis_prefix")}
    return lambda run_job, **options: running_engine(kind, run_job, tmp_path, **redis, **options)


def test_happy_path_events_are_ordered_and_the_result_is_a_blob(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.stepping) as (e, blobs):
            assert isinstance(e, InferenceEngine)
            await e.submit(job("a"))
            events = await collect(e, "a")
            return events, blobs.get(events[-1].result_ref)

    events, data = asyncio.run(main())
    assert events[:2] == [Queued(position=0), Started()]
    assert events[2:-1] == [Progress(done=i, total=4) for i in range(1, 5)]
    assert isinstance(events[-1], Succeeded)
    assert (events[-1].mime, events[-1].size, data) == ("image/gif", len(RESULT), RESULT)


def test_the_jobs_notices_travel_in_its_final_event(engine):
    notice = "found 3 faces in the photo; used the largest one"

    def with_notice(job, progress, token) -> JobOutput:
        return JobOutput(RESULT, "image/gif", {}, (notice,))

    async def main():
        async with engine(with_notice) as (e, _):
            await e.submit(job("n"))
            return await collect(e, "n")

    final = asyncio.run(main())[-1]
    assert isinstance(final, Succeeded) and final.notices == (notice,)


def test_submit_is_idempotent_on_job_id(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.stepping) as (e, _):
            await e.submit(job("a"))
            await e.submit(job("a"))  # while it runs
            first = await collect(e, "a")
            await e.submit(job("a"))  # after it ended
            await asyncio.sleep(0.1)
            return first, await collect(e, "a")

    first, again = asyncio.run(main())
    assert jobs.started == ["a"]
    assert first == again
    assert kinds(first).count("queued") == 1 and kinds(first).count("succeeded") == 1


def test_late_subscribers_get_every_event_and_unknown_ids_are_refused(engine):
    jobs = Jobs(steps=6, step_s=0.02)

    async def main():
        async with engine(jobs.stepping) as (e, _):
            await e.submit(job("a"))
            early = asyncio.create_task(collect(e, "a"))
            await until(lambda: jobs.started)
            await asyncio.sleep(0.05)
            middle = await collect(e, "a")  # subscribed mid-run
            after = await collect(e, "a")   # subscribed after the end
            with pytest.raises(UnknownJobError):
                await collect(e, "nope")
            return await early, middle, after

    early, middle, after = asyncio.run(main())
    assert early == middle == after
    assert kinds(early)[:2] == ["queued", "started"] and kinds(early)[-1] == "succeeded"


def test_cancel_a_queued_job_never_starts_it(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated) as (e, _):
            await e.submit(job("a"))
            await until(lambda: jobs.started == ["a"])
            await e.submit(job("b"))
            await e.submit(job("c"))
            assert await e.cancel("b") is True
            assert await e.cancel("b") is False
            assert await e.cancel("unknown") is False
            b = await collect(e, "b")
            jobs.gate.set()
            return b, await collect(e, "c")

    b, c = asyncio.run(main())
    assert b == [Queued(position=0), Failed(code="cancelled", message="the swap was cancelled", retryable=False)]
    assert c[0] == Queued(position=1) and isinstance(c[-1], Succeeded)
    assert jobs.started == ["a", "c"]


def test_cancel_a_running_job_stops_its_work(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated) as (e, _):
            await e.submit(job("a"))
            await e.submit(job("b"))
            await until(lambda: jobs.started == ["a"])
            assert await e.cancel("a") is True
            events = await collect(e, "a")
            await until(lambda: jobs.stopped == ["a"], timeout=2.0)
            await until(lambda: jobs.started == ["a", "b"], timeout=2.0)  # the freed worker goes on
            jobs.gate.set()
            return events, await collect(e, "b")

    a, b = asyncio.run(main())
    assert kinds(a)[:2] == ["queued", "started"]
    assert a[-1] == Failed(code="cancelled", message="the swap was cancelled", retryable=False)
    assert isinstance(b[-1], Succeeded)


def test_deadline_fails_running_and_queued_jobs(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated) as (e, _):
            began = time.monotonic()
            await e.submit(job("slow", deadline_s=0.3))
            await until(lambda: jobs.started == ["slow"])
            await e.submit(job("waiting", deadline_s=0.1))
            slow = await collect(e, "slow")
            elapsed = time.monotonic() - began
            await until(lambda: jobs.stopped == ["slow"], timeout=2.0)
            return slow, await collect(e, "waiting"), elapsed

    slow, waiting, elapsed = asyncio.run(main())
    assert 0.25 < elapsed < 1.5
    for events in (slow, waiting):
        final = events[-1]
        assert isinstance(final, Failed) and final.code == "deadline" and final.retryable
        assert "took longer than" in final.message
    assert kinds(waiting) == ["queued", "failed"]
    assert jobs.started == ["slow"]


def test_a_full_queue_says_busy_and_frees_up(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated, max_queue=2) as (e, _):
            await e.submit(job("a", user="telegram:1"))
            await until(lambda: jobs.started == ["a"])
            await e.submit(job("b", user="telegram:2"))
            await e.submit(job("c", user="telegram:3"))
            with pytest.raises(Busy) as refused:
                await e.submit(job("d", user="telegram:4"))
            with pytest.raises(UnknownJobError):
                await collect(e, "d")
            jobs.gate.set()
            await collect(e, "c")
            await e.submit(job("d", user="telegram:4"))  # room again
            return refused.value, await collect(e, "d")

    refused, d = asyncio.run(main())
    assert re.fullmatch(r"busy, try again in about \d+ s", str(refused))
    assert refused.code == "busy" and refused.retry_after_s >= 1
    assert isinstance(d[-1], Succeeded)


def test_per_user_concurrency_limit(engine):
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated, workers=2, per_user_concurrency=2) as (e, _):
            await e.submit(job("a1", user="telegram:1"))
            await e.submit(job("a2", user="telegram:1"))
            with pytest.raises(RateLimited) as refused:
                await e.submit(job("a3", user="telegram:1"))
            await e.submit(job("b1", user="telegram:2"))  # another user is not held back
            assert await e.cancel("a1")
            await e.submit(job("a3", user="telegram:1"))  # a slot came free
            jobs.gate.set()
            return refused.value, await collect(e, "a3")

    refused, a3 = asyncio.run(main())
    assert "you already have 2 swaps in progress" in str(refused)
    assert refused.code == "rate_limited" and refused.retry_after_s > 0
    assert isinstance(a3[-1], Succeeded)


def test_per_user_rate_is_a_token_bucket(engine):
    jobs = Jobs(steps=1, step_s=0)

    async def main():
        async with engine(jobs.stepping, per_user_rate=(1.0, 2.0)) as (e, _):  # 1 a minute, burst of 2
            await e.submit(job("a1"))
            await e.submit(job("a2"))
            with pytest.raises(RateLimited) as refused:
                await e.submit(job("a3"))
            await e.submit(job("b1", user="discord:9"))  # a bucket per user
            return refused.value, await collect(e, "b1")

    refused, b1 = asyncio.run(main())
    assert 55 < refused.retry_after_s <= 60.5
    assert re.fullmatch(r"too many swaps in a short time, try again in about (5\d|60) s", str(refused))
    assert isinstance(b1[-1], Succeeded)


def test_input_errors_and_crashes_become_failed_events(engine, caplog):
    def choose(job, progress, token):
        if job.job_id == "refuse":
            progress(1, 10)
            raise NoFaceError("no face found in the photo; send a clear, front-facing photo of one face")
        raise ZeroDivisionError("secret internals")

    async def main():
        async with engine(choose) as (e, _):
            await e.submit(job("refuse"))
            await e.submit(job("crash"))
            return await collect(e, "refuse"), await collect(e, "crash")

    with caplog.at_level(logging.ERROR):
        refused, crashed = asyncio.run(main())
    assert kinds(refused) == ["queued", "started", "progress", "failed"]
    assert refused[-1] == Failed(code="no_face", retryable=False,
                                 message="no face found in the photo; send a clear, front-facing photo of one face")
    assert crashed[-1] == Failed(code="internal", message=INTERNAL_MESSAGE, retryable=True)
    record = next(r for r in caplog.records if "crash" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError
    assert getattr(record, "job_id", None) == "crash"


def test_a_users_unfinished_jobs_are_listed_and_end_with_the_reason_they_were_cancelled_for(engine):
    """What "forget me" needs: the user's queued and running jobs, and a cancel that tells
    the followers why."""
    jobs = Jobs()
    forgotten = Failed(code="forgotten", message="cancelled because you asked me to forget you", retryable=False)

    async def main():
        async with engine(jobs.gated) as (e, _):
            await e.submit(job("running", user="discord:5"))
            await until(lambda: jobs.started == ["running"])
            await e.submit(job("queued", user="discord:5"))
            await e.submit(job("other", user="discord:6"))
            listed = sorted(j.job_id for j in await e.unfinished_jobs("discord:5"))
            for job_id in listed:
                assert await e.cancel(job_id, forgotten) is True
            events = [await collect(e, job_id) for job_id in listed]
            await until(lambda: jobs.stopped == ["running"], timeout=2.0)
            left = [j.job_id for j in await e.unfinished_jobs("discord:5")]
            jobs.gate.set()
            return listed, events, left, await collect(e, "other")

    listed, events, left, other = asyncio.run(main())
    assert listed == ["queued", "running"]
    assert [e[-1] for e in events] == [forgotten, forgotten]
    assert left == []
    assert isinstance(other[-1], Succeeded)  # another user's job goes on


def test_drain_refuses_new_jobs_and_lets_the_running_one_finish_within_the_grace(engine):
    jobs = Jobs(steps=10, step_s=0.05)

    async def main():
        async with engine(jobs.stepping) as (e, _):
            await e.submit(job("in-flight"))
            follower = asyncio.create_task(collect(e, "in-flight"))
            await until(lambda: jobs.started == ["in-flight"])
            draining = asyncio.create_task(e.drain(10.0))
            await asyncio.sleep(0.05)
            with pytest.raises(Restarting) as refused:
                await e.submit(job("late"))
            await draining
            return follower.done(), await follower, str(refused.value)

    followed_before_drain_returned, events, refusal = asyncio.run(main())
    assert followed_before_drain_returned  # the follower had handled the final when drain returned
    assert isinstance(events[-1], Succeeded)
    assert refusal == "the bot is restarting — try again in a minute"


def test_drain_ends_what_cannot_finish_in_the_grace_only_in_process(engine, request):
    """The in-process engine cannot leave a job to anyone: it ends with "restarting". On
    Redis the job lives on, for a worker to finish and the restarted shard to post."""
    jobs = Jobs()

    async def main():
        async with engine(jobs.gated) as (e, _):
            await e.submit(job("stuck"))
            follower = asyncio.create_task(collect(e, "stuck", timeout=10))
            await until(lambda: jobs.started == ["stuck"])
            await e.drain(0.2)
            ended = follower.done()
            jobs.gate.set()
            return ended, await follower

    ended, events = asyncio.run(main())
    if request.node.callspec.params["engine"] == "in_process":
        assert ended and events[-1] == RESTARTED
    else:
        assert not ended and isinstance(events[-1], Succeeded)
