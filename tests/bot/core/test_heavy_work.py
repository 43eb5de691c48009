"""The bot process's pool for heavy media work: bounded, and every piece of work under a
deadline that the waiter keeps and the work itself notices."""

import asyncio
import threading
import time

import pytest

from memeswap.bot.core.heavy_work import HeavyWork
from memeswap.inference.errors import DeadlineExceededError
from memeswap.inference.jobs.contract import Busy, RateLimited


def test_work_runs_in_a_pool_of_its_own_at_most_threads_at_once():
    heavy = HeavyWork(threads=2, deadline_s=30)
    running, most = [0], [0]
    lock = threading.Lock()

    def work(deadline):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    async def main():
        return await asyncio.gather(*(heavy.run(f"user{i}", work) for i in range(6)))

    try:
        names = asyncio.run(main())
    finally:
        heavy.close()
    assert most[0] == 2
    assert all(name.startswith("memeswap-heavy") for name in names)


def test_past_its_deadline_the_waiter_gets_one_line_and_the_work_stops():
    heavy = HeavyWork(threads=1, deadline_s=0.2)
    stopped = threading.Event()

    def endless(deadline):
        try:
            while True:
                deadline.check()
                time.sleep(0.01)
        finally:
            stopped.set()

    async def main():
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as refused:
            await heavy.run("a", endless)
        return refused.value, time.monotonic() - started

    try:
        refused, waited = asyncio.run(main())
        assert stopped.wait(1.0)  # the work noticed at its next check
    finally:
        heavy.close()
    assert str(refused) == "that took longer than 0.2 s and was stopped; try a shorter or smaller file"
    assert 0.2 <= waited < 1.0


def test_work_that_gets_no_thread_in_time_is_busy_and_never_starts_late():
    heavy = HeavyWork(threads=1, deadline_s=5, queue_s=0.2)
    started = []

    def hog(deadline):
        time.sleep(0.5)  # holds the only thread past the other's wait

    def queued(deadline):
        started.append(True)

    async def main():
        first = asyncio.ensure_future(heavy.run("a", hog))
        await asyncio.sleep(0.05)  # the hog has the thread
        with pytest.raises(Busy):
            await heavy.run("b", queued)
        await first

    try:
        asyncio.run(main())
        time.sleep(0.3)
    finally:
        heavy.close()
    assert started == []


def test_one_persons_pieces_run_one_at_a_time_and_only_a_few_may_wait():
    heavy = HeavyWork(threads=2, deadline_s=5, pending_per_person=2)
    order: list[str] = []
    lock = threading.Lock()

    def piece(name):
        def work(deadline):
            with lock:
                order.append(f"{name}+")
            time.sleep(0.1)
            with lock:
                order.append(f"{name}-")
        return work

    async def main():
        mine = [asyncio.ensure_future(heavy.run("mallory", piece(f"m{i}"))) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(RateLimited):
            await heavy.run("mallory", piece("m2"))
        other = asyncio.ensure_future(heavy.run("bea", piece("b")))
        await asyncio.gather(*mine, other)

    try:
        asyncio.run(main())
    finally:
        heavy.close()
    assert order.index("m0-") < order.index("m1+")  # Mallory's second waited for her first
    assert order.index("b+") < order.index("m0-")  # Bea did not wait for Mallory


def test_work_past_its_point_of_no_return_is_waited_for():
    heavy = HeavyWork(threads=1, deadline_s=0.1)

    def committing(deadline):
        deadline.commit()
        time.sleep(0.3)  # e.g. a rename into place and its bookkeeping
        return "done"

    try:
        assert asyncio.run(heavy.run("a", committing)) == "done"
    finally:
        heavy.close()
