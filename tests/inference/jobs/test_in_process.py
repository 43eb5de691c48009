"""InProcessEngine against fake job functions: they sleep (or multiply matrices) in small
steps and call `progress` between steps, like the real swap does between frame batches."""

import asyncio
import logging
import re
import threading
import time

import numpy as np
import pytest

from inference.errors import NoFaceError
from inference.jobs.blobs import LocalBlobStore
from inference.jobs.contract import (
    Busy,
    Failed,
    InferenceEngine,
    Progress,
    Queued,
    RateLimited,
    Started,
    Succeeded,
    SwapJob,
    UnknownJobError,
)
from inference.jobs.in_process import INTERNAL_MESSAGE, InProcessEngine, LagProbe

RESULT = b"GIF89a-not-really"


def job(job_id: str, user: str = "telegram:1", deadline_s: float | None = None) -> SwapJob:
    return SwapJob(job_id=job_id, user_key=user, selfie_ref="selfie", template="deal-with-it",
                   deadline_s=deadline_s)


class Jobs:
    """Fake `run_job` functions that record what ran and how it ended."""

    def __init__(self, steps: int = 4, step_s: float = 0.01) -> None:
        self.steps = steps
        self.step_s = step_s
        self.started: list[str] = []
        self.stopped: list[str] = []  # jobs whose worker saw the cancellation
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def _note(self, names: list[str], job_id: str) -> None:
        with self._lock:
            names.append(job_id)

    def stepping(self, job, progress, token):
        self._note(self.started, job.job_id)
        for i in range(self.steps):
            time.sleep(self.step_s)
            progress(i + 1, self.steps)
        return RESULT, "image/gif"

    def gated(self, job, progress, token):
        """Runs until `gate` opens, reporting (0, 1) while it waits."""
        self._note(self.started, job.job_id)
        try:
            while not self.gate.wait(0.01):
                progress(0, 1)
        except BaseException:
            self._note(self.stopped, job.job_id)
            raise
        progress(1, 1)
        return RESULT, "image/gif"


def engine_for(run_job, tmp_path, **options) -> InProcessEngine:
    options.setdefault("workers", 1)
    options.setdefault("per_user_concurrency", 10)
    options.setdefault("per_user_rate", (600.0, 100.0))
    return InProcessEngine(run_job, LocalBlobStore(tmp_path / "blobs"), **options)


async def collect(engine: InProcessEngine, job_id: str, timeout: float = 5.0) -> list:
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


def test_happy_path_events_are_ordered_and_result_is_a_blob(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.stepping, tmp_path) as engine:
            assert isinstance(engine, InferenceEngine)
            await engine.submit(job("a"))
            events = await collect(engine, "a")
            return engine, events

    engine, events = asyncio.run(main())
    assert events[0] == Queued(position=0)
    assert events[1] == Started()
    assert events[2:-1] == [Progress(done=i, total=4) for i in range(1, 5)]
    final = events[-1]
    assert isinstance(final, Succeeded)
    assert (final.mime, final.size) == ("image/gif", len(RESULT))
    assert LocalBlobStore(tmp_path / "blobs").get(final.result_ref) == RESULT


def test_submit_is_idempotent_on_job_id(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.stepping, tmp_path) as engine:
            await engine.submit(job("a"))
            await engine.submit(job("a"))  # while it runs
            first = await collect(engine, "a")
            await engine.submit(job("a"))  # after it ended
            await asyncio.sleep(0.05)
            return first, await collect(engine, "a")

    first, again = asyncio.run(main())
    assert jobs.started == ["a"]
    assert first == again
    assert kinds(first).count("queued") == 1 and kinds(first).count("succeeded") == 1


def test_late_subscribers_get_every_event_from_the_start(tmp_path):
    jobs = Jobs(steps=6, step_s=0.02)

    async def main():
        async with engine_for(jobs.stepping, tmp_path) as engine:
            await engine.submit(job("a"))
            early = asyncio.create_task(collect(engine, "a"))
            await until(lambda: jobs.started)
            await asyncio.sleep(0.05)
            middle = await collect(engine, "a")  # subscribed mid-run
            after = await collect(engine, "a")   # subscribed after the end
            with pytest.raises(UnknownJobError):
                engine.events("nope")
            return await early, middle, after

    early, middle, after = asyncio.run(main())
    assert early == middle == after
    assert kinds(early)[:2] == ["queued", "started"] and kinds(early)[-1] == "succeeded"


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


def test_cancel_a_queued_job_never_starts_it(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.gated, tmp_path) as engine:
            await engine.submit(job("a"))
            await engine.submit(job("b"))
            await engine.submit(job("c"))
            assert await engine.cancel("b") is True
            assert await engine.cancel("b") is False
            assert await engine.cancel("unknown") is False
            jobs.gate.set()
            return await collect(engine, "b"), await collect(engine, "c")

    b, c = asyncio.run(main())
    assert b == [Queued(position=0),
                 Failed(code="cancelled", message="the swap was cancelled", retryable=False)]
    assert [e.position for e in c if isinstance(e, Queued)] == [1, 0]
    assert isinstance(c[-1], Succeeded)
    assert jobs.started == ["a", "c"]


def test_cancel_a_running_job_stops_its_worker(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.gated, tmp_path) as engine:
            await engine.submit(job("a"))
            await engine.submit(job("b"))
            await until(lambda: jobs.started == ["a"])
            assert await engine.cancel("a") is True
            events = await collect(engine, "a")
            await until(lambda: jobs.stopped == ["a"], timeout=1.0)
            # the freed worker takes the next job
            await until(lambda: jobs.started == ["a", "b"], timeout=1.0)
            jobs.gate.set()
            return events, await collect(engine, "b")

    a, b = asyncio.run(main())
    assert kinds(a)[:2] == ["queued", "started"]
    assert a[-1] == Failed(code="cancelled", message="the swap was cancelled", retryable=False)
    assert isinstance(b[-1], Succeeded)


def test_deadline_fails_running_and_queued_jobs(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.gated, tmp_path) as engine:
            began = time.monotonic()
            await engine.submit(job("slow", deadline_s=0.2))
            await engine.submit(job("waiting", deadline_s=0.1))
            slow = await collect(engine, "slow")
            elapsed = time.monotonic() - began
            await until(lambda: jobs.stopped == ["slow"], timeout=1.0)
            return slow, await collect(engine, "waiting"), elapsed

    slow, waiting, elapsed = asyncio.run(main())
    assert 0.15 < elapsed < 1.0
    for events in (slow, waiting):
        final = events[-1]
        assert isinstance(final, Failed) and final.code == "deadline" and final.retryable
    assert kinds(waiting) == ["queued", "failed"]
    assert jobs.started == ["slow"]


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


def test_per_user_concurrency_limit(tmp_path):
    jobs = Jobs()

    async def main():
        async with engine_for(jobs.gated, tmp_path, workers=2, per_user_concurrency=2) as engine:
            await engine.submit(job("a1", user="telegram:1"))
            await engine.submit(job("a2", user="telegram:1"))
            with pytest.raises(RateLimited) as refused:
                await engine.submit(job("a3", user="telegram:1"))
            await engine.submit(job("b1", user="telegram:2"))  # another user is not held back
            assert await engine.cancel("a1")
            await engine.submit(job("a3", user="telegram:1"))  # a slot came free
            jobs.gate.set()
            return refused.value, await collect(engine, "a3")

    refused, a3 = asyncio.run(main())
    assert "you already have 2 swaps in progress" in str(refused)
    assert refused.code == "rate_limited" and refused.retry_after_s > 0
    assert isinstance(a3[-1], Succeeded)


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


def test_input_errors_and_crashes_become_failed_events(tmp_path, caplog):
    def refuse(job, progress, token):
        progress(1, 10)
        raise NoFaceError("no face found in the photo; send a clear, front-facing photo of one face")

    def crash(job, progress, token):
        raise ZeroDivisionError("secret internals")

    def choose(job, progress, token):
        return (refuse if job.job_id == "refuse" else crash)(job, progress, token)

    async def main():
        async with engine_for(choose, tmp_path) as engine:
            await engine.submit(job("refuse"))
            await engine.submit(job("crash"))
            return await collect(engine, "refuse"), await collect(engine, "crash")

    with caplog.at_level(logging.ERROR, logger="memeswap.jobs"):
        refused, crashed = asyncio.run(main())
    assert kinds(refused) == ["queued", "started", "progress", "failed"]
    assert refused[-1] == Failed(code="no_face", retryable=False,
                                 message="no face found in the photo; send a clear, front-facing photo of one face")
    assert crashed[-1] == Failed(code="internal", message=INTERNAL_MESSAGE, retryable=True)
    assert "secret" not in crashed[-1].message
    record = next(r for r in caplog.records if "crash" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError


def test_event_loop_stays_responsive_while_workers_compute(tmp_path):
    """NumPy's matrix multiply releases the GIL, like OpenCV and ONNX Runtime do."""
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((400, 400))

    def compute(job, progress, token):
        product = matrix
        for i in range(30):
            product = np.tanh(product @ matrix)
            progress(i + 1, 30)
        return product.tobytes()[:64], "application/octet-stream"

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
