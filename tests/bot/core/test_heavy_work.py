"""The bot process's pool for heavy media work: bounded, and every piece of work under a
deadline that the waiter keeps and the work itself notices."""

import asyncio
import threading
import time

import pytest

from bot.core.heavy_work import HeavyWork
from inference.errors import DeadlineExceededError


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
        return await asyncio.gather(*(heavy.run(work) for _ in range(6)))

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
            await heavy.run(endless)
        return refused.value, time.monotonic() - started

    try:
        refused, waited = asyncio.run(main())
        assert stopped.wait(1.0)  # the work noticed at its next check
    finally:
        heavy.close()
    assert str(refused) == "that took longer than 0.2 s and was stopped; try a shorter or smaller file"
    assert 0.2 <= waited < 1.0


def test_work_waiting_for_a_thread_counts_against_its_deadline_and_never_starts_late():
    heavy = HeavyWork(threads=1, deadline_s=0.2)
    started = []

    def hog(deadline):
        time.sleep(0.5)  # does not check: holds the only thread past the other's deadline

    def queued(deadline):
        started.append(True)

    async def main():
        first = asyncio.ensure_future(heavy.run(hog))
        await asyncio.sleep(0.05)  # the hog has the thread
        with pytest.raises(DeadlineExceededError):
            await heavy.run(queued)
        with pytest.raises(DeadlineExceededError):
            await first

    try:
        asyncio.run(main())
        time.sleep(0.5)
    finally:
        heavy.close()
    assert started == []


def test_work_past_its_point_of_no_return_is_waited_for():
    heavy = HeavyWork(threads=1, deadline_s=0.1)

    def committing(deadline):
        deadline.commit()
        time.sleep(0.3)  # e.g. a rename into place and its bookkeeping
        return "done"

    try:
        assert asyncio.run(heavy.run(committing)) == "done"
    finally:
        heavy.close()
