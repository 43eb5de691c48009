"""A job's events as one process knows them, readable from the start by any number of
followers: the caller that submitted, a late subscriber, a restarted handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from memeswap.inference.jobs.contract import Event, is_final


class EventLog:
    """Append-only, in order; closed by the first final event. Used on the event loop only."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.following = 0  # followers iterating now; one that handled the final event has stopped
        self._signal = asyncio.Event()

    @property
    def finished(self) -> bool:
        return bool(self.events) and is_final(self.events[-1])

    def __len__(self) -> int:
        return len(self.events)

    def append(self, event: Event) -> bool:
        """Add an event; False (and nothing added) once the log is closed."""
        if self.finished:
            return False
        self.events.append(event)
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()
        return True

    async def follow(self, on_final_read: Callable[[], None] | None = None) -> AsyncIterator[Event]:
        """Every event from the first; ends after the final one.

        `on_final_read` runs once the follower has taken the final event and asked for
        more, i.e. after it has handled the final event, not merely received it.
        """
        seen = 0
        self.following += 1
        try:
            while True:
                while seen < len(self.events):
                    event = self.events[seen]
                    seen += 1
                    yield event
                if self.finished:
                    if on_final_read is not None:
                        on_final_read()
                    return
                # No await between the length check and taking the signal, so nothing is missed.
                signal = self._signal
                await signal.wait()
        finally:
            self.following -= 1


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Wait until `condition()` holds (checked every 50 ms), for at most `timeout_s`: how an
    engine draining at shutdown waits for its jobs and their followers."""
    give_up = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
