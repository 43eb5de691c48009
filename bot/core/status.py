"""A job's events as the one status line a chat shows, edited in place as the job moves.

Chat platforms limit how often one message may be edited, so `JobStatus` only offers a new
line when it says something new: a changed queue position, the start, a progress step of
at least `min_interval_s` after the last one, and the end.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from memeswap.bot.core.wording import TELEGRAM, PlatformWording
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import (
    Busy,
    Event,
    Failed,
    Progress,
    Queued,
    RateLimited,
    Started,
    Succeeded,
)


def status_line(event: Event) -> str:
    if isinstance(event, Queued):
        if event.position == 0:
            return "⏳ In the queue: you're next"
        return f"⏳ In the queue: {event.position} ahead of you"
    if isinstance(event, Started):
        return "🎬 Swapping faces…"
    if isinstance(event, Progress):
        percent = 100 * event.done // event.total if event.total else 0
        return f"🎬 Swapping faces… {percent}% ({event.done}/{event.total} frames)"
    if isinstance(event, Succeeded):
        return "✅ Done!"
    assert isinstance(event, Failed)
    return f"⚠️ {failure_line(event)}"


def success_line(event: Succeeded, line: str) -> str:
    """`line` (the adapter's "done"), then the job's notices, one per line."""
    return "\n".join([line, *(f"ℹ️ {as_sentence(notice)}" for notice in event.notices)])


def failure_line(event: Failed) -> str:
    if event.retryable and "try again" not in event.message:
        return f"{as_sentence(event.message)} You can try again."
    return as_sentence(event.message)


def refusal_line(error: InputError, wording: PlatformWording = TELEGRAM) -> str:
    """Why a request was refused, as a chat reply (the service's limits said kindly, the
    commands to use in `wording`'s platform)."""
    if isinstance(error, Busy):
        return f"Lots of memes are being made right now. {as_sentence(str(error))}"
    if isinstance(error, RateLimited):
        return f"Easy there! {as_sentence(str(error))}"
    if error.code == "no_saved_face":
        return wording.no_saved_face
    return as_sentence(str(error))


def fitted(text: str, limit: int) -> str:
    """`text` within a platform's message length (`limit` characters): the last guard, should
    a line quote more than it should."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def as_sentence(text: str) -> str:
    """A one-line message (\"no face found; send ...\") as a chat reply: capitalised, with a full stop."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class JobStatus:
    """Decides which events are worth an edit of the status message."""

    def __init__(self, min_interval_s: float = 1.5, clock=time.monotonic) -> None:
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last_line: str | None = None
        self._last_progress_at = float("-inf")

    def line_for(self, event: Event) -> str | None:
        """The new text for the status message, or None to leave it as it is."""
        line = status_line(event)
        if line == self._last_line:
            return None
        if isinstance(event, Progress):
            now = self._clock()
            if now - self._last_progress_at < self.min_interval_s and event.done < event.total:
                return None
            self._last_progress_at = now
        self._last_line = line
        return line


async def follow_job(events: AsyncIterator[Event], show: Callable[[str], Awaitable[None]],
                     deliver: Callable[[Succeeded], Awaitable[None]]) -> None:
    """The follow loop every adapter runs: each event worth a new status line goes to `show`,
    a failure as its one line, and the finished meme to `deliver`."""
    lines = JobStatus()
    async for event in events:
        if isinstance(event, Succeeded):
            await deliver(event)
        elif isinstance(event, Failed):
            await show(f"⚠️ {failure_line(event)}")
        elif (line := lines.line_for(event)) is not None:
            await show(line)
