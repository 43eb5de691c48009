"""Where a bot process decodes and analyses what people send: a small thread pool of its
own, shared fairly, and a deadline on every piece of work.

Adding a template, screening a one-off, checking a selfie and saving a face each decode
media and run face analysis: seconds of CPU, more for a hostile file. In the event loop's
default pool they would queue behind (and ahead of) every small `asyncio.to_thread` call;
here at most `threads` of them run at once, and:

- one person's work runs one piece at a time, and only a few more of theirs may wait, so
  nobody can fill the pool by sending many files at once (the others get one line);
- work that cannot get a thread within `queue_s` is refused as "busy", not left to wait;
- running work gives up at its deadline with one clear line, and stops soon after (the
  `Deadline` it is handed is checked between frames), so the bot keeps answering everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from memeswap.inference.jobs.contract import Busy, RateLimited
from memeswap.inference.media.limits import Deadline

T = TypeVar("T")


class _Person:
    """One person's place in the pool: their pieces run one at a time."""

    def __init__(self) -> None:
        self.turn = asyncio.Lock()
        self.pending = 0


class HeavyWork:
    def __init__(self, threads: int = 2, deadline_s: float = 120.0, queue_s: float = 30.0,
                 pending_per_person: int = 3) -> None:
        self.deadline_s = deadline_s
        self.queue_s = queue_s
        self.pending_per_person = pending_per_person
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="memeswap-heavy")
        self._free = asyncio.Semaphore(threads)  # released when a thread is really done
        self._people: dict[str, _Person] = {}
        self._running: set[Deadline] = set()

    async def run(self, owner: str, work: Callable[[Deadline], T]) -> T:
        """`work(deadline)` in the pool, on behalf of `owner` (a `Requester.user_key`).

        Raises `RateLimited` when the owner already has `pending_per_person` pieces waiting,
        `Busy` when no thread frees up within `queue_s`, and `DeadlineExceededError` once
        `deadline_s` have passed since the work started. Work that got past its point of no
        return (`Deadline.commit`) is waited for instead."""
        person = self._people.setdefault(owner, _Person())
        if person.pending >= self.pending_per_person:
            raise RateLimited(self.queue_s, "I'm still working on your last files; send this one again when "
                                            "they're done")
        person.pending += 1
        try:
            async with person.turn:
                await self._take_thread()
                return await self._run(work)
        finally:
            person.pending -= 1
            if person.pending == 0:
                self._people.pop(owner, None)

    async def _take_thread(self) -> None:
        try:
            await asyncio.wait_for(self._free.acquire(), self.queue_s)
        except TimeoutError:
            raise Busy(self.queue_s) from None

    async def _run(self, work: Callable[[Deadline], T]) -> T:
        loop = asyncio.get_running_loop()
        deadline = Deadline(self.deadline_s)
        try:
            started = self._pool.submit(work, deadline)
        except BaseException:
            self._free.release()
            raise
        started.add_done_callback(lambda _: loop.call_soon_threadsafe(self._free.release))
        future = asyncio.wrap_future(started)
        self._running.add(deadline)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.deadline_s)
        except TimeoutError:
            if deadline.expire():
                future.cancel()  # stops at its next check
                raise deadline.error() from None
            return await future
        except asyncio.CancelledError:
            deadline.expire()
            future.cancel()
            raise
        finally:
            self._running.discard(deadline)

    def close(self) -> None:
        """Work not started is dropped; running work stops at its next deadline check."""
        for deadline in list(self._running):
            deadline.expire()
        self._pool.shutdown(wait=False, cancel_futures=True)

