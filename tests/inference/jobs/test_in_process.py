"""What only the in-process engine does: queue positions that move, a retry hint from
recent durations, a fake clock for the token bucket, the event loop's lag while threads
compute, and failing unfinished jobs on close. The contract both engines share is in
test_engine_contract.py."""

import asyncio
import re
import time

import numpy as np
import pytest

from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.contract import Busy, JobOutput, Queued, RateLimited, Succeeded, UnknownJobError
from memeswap.inference.jobs.in_process import InProcessEngine, LagProbe
from tests.inference.jobs.engine_harness import Jobs, collect, job, kinds, until


def engine_for(run_job, tmp_path, **options) -> InProcessEngine:
    options.setdefault("workers", 1)
    options.setdefault("per_user_concurrency", 10)
    options.setdefault("per_user_rate", (600.0, 100.0))
    return InProcessEngine(run_job, LocalBlobStore(tmp_path / "blobs"), **options)


def test_queue_positions_are_real_and_move(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.gated, tmp_path) as engine:
            for name in "abc":
                await engine.submit(job(name, user=f"telegram:{name}"))
            assert engine.queue_depth == 2 and engine.running == 1
            jobs.gate.set()
            return [await collect(engine, name) for name in "abc"]

    a, b, c = asyncio.run(main())
    queued = lambda events: [e.position for e in events if isinstance(e, Queued)]  # noqa: E731
    assert queued(a) == [0] and queued(b) == [0] and queued(c) == [1, 0]
    for events in (a, b, c):
        names = kinds(events)
        last_queued = max(i for i, k in enumerate(names) if k == "queued")
        assert names[last_queued + 1] == "started" and names[-1] == "succeeded"
        assert set(names[last_queued + 2:-1]) == {"progress"}
    assert jobs.started == ["a", "b", "c"]


def test_full_queue_says_busy_with_a_retry_hint_from_recent_durations(tmp_path):
    jobs = Jobs(steps=5, step_s=0.05)  # about 0.25 s a job

    async def main():
        async with engine_for(jobs.stepping, tmp_path, max_queue=8) as engine:
            for name in ("w1", "w2"):  # warm up the duration estimate
                await engine.submit(job(name))
                await collect(engine, name)
            engine._run_job = jobs.gated
            for i in range(9):  # one runs, eight wait
                await engine.submit(job(f"j{i}", user=f"telegram:{i}"))
            with pytest.raises(Busy) as refused:
                await engine.submit(job("one-too-many", user="discord:7"))
            with pytest.raises(UnknownJobError):
                engine.events("one-too-many")
            jobs.gate.set()
            await collect(engine, "j8")
            await engine.submit(job("later", user="discord:7"))  # room again
            return refused.value, await collect(engine, "later")

    refused, later = asyncio.run(main())
    assert re.fullmatch(r"busy, try again in about \d+ s", str(refused))
    # eight waiting jobs of ~0.25 s on one worker
    assert 1.5 < refused.retry_after_s < 4.0
    assert isinstance(later[-1], Succeeded)


def test_per_user_token_bucket(tmp_path):
    jobs = Jobs(steps=1, step_s=0)
    clock = [0.0]

    async def main():
        engine = engine_for(jobs.stepping, tmp_path, per_user_rate=(30.0, 2.0), clock=lambda: clock[0])
        async with engine:
            await engine.submit(job("a1"))
            await engine.submit(job("a2"))
            with pytest.raises(RateLimited) as refused:
                await engine.submit(job("a3"))
            await engine.submit(job("b1", user="discord:1"))  # separate bucket
            clock[0] += 2.0  # 30 per minute: one token every 2 s
            await engine.submit(job("a3"))
            with pytest.raises(RateLimited):
                await engine.submit(job("a4"))
            return refused.value, await collect(engine, "a3")

    refused, a3 = asyncio.run(main())
    assert refused.retry_after_s == pytest.approx(2.0)
    assert str(refused) == "too many swaps in a short time, try again in about 2 s"
    assert isinstance(a3[-1], Succeeded)


def test_event_loop_stays_responsive_while_workers_compute(tmp_path):
    """NumPy's matrix multiply releases the GIL, like OpenCV and ONNX Runtime do."""
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((400, 400))

    def compute(job, progress, token):
        product = matrix
        for i in range(30):
            product = np.tanh(product @ matrix)
            progress(i + 1, 30)
        return JobOutput(product.tobytes()[:64], "application/octet-stream")

    async def main():
        async with engine_for(compute, tmp_path, workers=2) as engine:
            async with LagProbe() as probe:
                began = time.monotonic()
                for i in range(6):
                    await engine.submit(job(f"m{i}", user=f"telegram:{i}"))
                results = [await collect(engine, f"m{i}", timeout=15) for i in range(6)]
                busy = time.monotonic() - began
            return probe, results, busy

    probe, results, busy = asyncio.run(main())
    assert all(isinstance(events[-1], Succeeded) for events in results)
    assert busy > 0.2, "the jobs were too short to show anything"
    assert len(probe.samples) > 20
    assert probe.max_lag_s < 0.05, f"event loop lagged {probe.max_lag_s * 1000:.0f} ms"


def test_close_fails_unfinished_jobs_and_submit_needs_start(tmp_path):
    jobs = Jobs()

    async def main():
        engine = engine_for(jobs.gated, tmp_path)
        with pytest.raises(RuntimeError, match="start"):
            await engine.submit(job("early"))
        await engine.start()
        await engine.submit(job("a"))
        await engine.submit(job("b"))
        await until(lambda: jobs.started == ["a"])
        await engine.close(timeout_s=2)
        assert jobs.stopped == ["a"]
        return await collect(engine, "a"), await collect(engine, "b")

    a, b = asyncio.run(main())
    for events in (a, b):
        assert events[-1].code == "shutdown" and events[-1].retryable
    assert jobs.started == ["a"]
