"""/forget, as one use case: what went, and a guard that keeps work begun before a /forget
from bringing the person back.

A face save, a template add or a swap can be half-way (seconds of decoding, a protected-face
check) when its person asks to be forgotten; each notes when it began (`ForgetMarks.now`)
and checks, right before it writes or submits anything, that no /forget came since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from memeswap.inference.errors import InputError

FORGOTTEN_MESSAGE = "cancelled because you asked me to forget you"


class ForgottenError(InputError):
    code = "forgotten"

    def __init__(self) -> None:
        super().__init__(FORGOTTEN_MESSAGE)


class ForgetMarks:
    """When each person last asked to be forgotten in this process. A mark is kept longer
    than any piece of work can take (`keep_s`), then dropped."""

    def __init__(self, keep_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self._clock = clock
        self._at: dict[str, float] = {}

    def now(self) -> float:
        return self._clock()

    def mark(self, user_key: str) -> None:
        now = self._clock()
        self._at = {key: at for key, at in self._at.items() if now - at < self.keep_s}
        self._at[user_key] = now

    def check(self, user_key: str, since: float) -> None:
        """Raises `ForgottenError` when `user_key` asked to be forgotten at or after `since`."""
        if self._at.get(user_key, float("-inf")) >= since:
            raise ForgottenError()


@dataclass(frozen=True)
class ForgetReport:
    """What a /forget stopped and erased; `found` is false when nothing was stored at all."""

    found: bool = False
    swaps: int = 0
    saved_faces: int = 0
    templates: int = 0
    usage_events: int = 0

    def line(self) -> str:
        """The reply to /forget, the same on every platform."""
        if not self.found:
            return "I had nothing stored about you."
        stopped = f"stopped your swaps in progress ({self.swaps}) and " if self.swaps else ""
        return (f"Done: I {stopped}erased your saved faces ({self.saved_faces}), your own templates "
                f"({self.templates}) and your usage history.")
