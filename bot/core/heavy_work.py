"""Where a bot process decodes and analyses what people send: a small thread pool of its
own, and a deadline on every piece of work.

Adding a template, screening a one-off, checking a selfie and saving a face each decode
media and run face analysis: seconds of CPU, more for a hostile file. In the event loop's
default pool they would queue behind (and ahead of) every small `asyncio.to_thread` call;
here at most `threads` of them run at once, each gives up at its deadline with one clear
line, and the work itself stops soon after (the `Deadline` it is handed is checked between
frames), so the bot keeps answering everyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from inference.media.limits import Deadline

T = TypeVar("T")


class HeavyWork:
    def __init__(self, threads: int = 2, deadline_s: float = 120.0) -> None:
        self.threads = threads
        self.deadline_s = deadline_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="memeswap-heavy")
        self._running: set[Deadline] = set()

    async def run(self, work: Callable[[Deadline], T]) -> T:
        """`work(deadline)` in the pool; raises `DeadlineExceededError` (an `InputError`)
        once `deadline_s` have passed since the call, waiting for a thread included. Work
        that got past its point of no return (`Deadline.commit`) is waited for instead."""
        deadline = Deadline(self.deadline_s)
        future = asyncio.wrap_future(self._pool.submit(work, deadline))
        self._running.add(deadline)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.deadline_s)
        except TimeoutError:
            if deadline.expire():
                future.cancel()  # not started yet: never starts; running: stops at its next check
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
