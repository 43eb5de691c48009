"""The limits every entry point shares, and the deadline heavy media work runs under."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from memeswap.inference.errors import DeadlineExceededError


@dataclass(frozen=True)
class MediaLimits:
    """Limits every entry point shares (DESIGN.md, "Limits every entry point shares").

    The decode budgets bound the work of decoding one template, in pixels decoded over all
    its frames, and are checked from the header before anything is decoded (and counted
    again while decoding): the per-file limits alone let through an 8 KB GIF of 300 1x1
    frames on a 6000x6000 canvas, which Pillow composes on the full canvas frame by frame
    (measured on the project's 2-core machine: 50-180 megapixels a second, so minutes of
    CPU). ffmpeg decodes a video at its stored size before scaling, at 500-900 megapixels a
    second there. The defaults admit, with room to spare, a 640x640 GIF of 300 frames (123
    MP, under a second) and a 4K video of 300 frames (2.5 gigapixels, about 3 s); the
    costliest GIF they admit (300 frames of 1468x1468) decodes in about 5 s there.
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_template_bytes: int = 50 * 1024 * 1024
    max_frames: int = 300
    max_seconds: float = 15.0
    max_template_side: int = 1024
    min_side: int = 16
    max_animation_decode_pixels: int = 650_000_000
    max_video_decode_pixels: int = 2_600_000_000


class Deadline:
    """When a piece of heavy work (decoding and analysing a template, checking a photo) must
    stop, shared between the thread doing it and the coroutine waiting for it.

    The work calls `check()` between frames and stops with a `DeadlineExceededError` once
    the time is up or the waiter gave up (`expire()`). Before its first lasting effect (a
    template folder renamed into place) the work calls `commit()`: from then on it finishes,
    and `expire()` says so, so the work is never left half done. Thread-safe."""

    def __init__(self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._ends_at = None if seconds is None else clock() + seconds
        self._lock = threading.Lock()
        self._given_up = False
        self._committed = False

    @property
    def expired(self) -> bool:
        if self._committed:
            return False
        return self._given_up or (self._ends_at is not None and self._clock() >= self._ends_at)

    def check(self) -> None:
        """Raise when the work should stop."""
        if self.expired:
            raise self.error()

    def expire(self) -> bool:
        """The waiter gives up: the work stops at its next `check()`. False when the work is
        already past `commit()` and will finish."""
        with self._lock:
            if self._committed:
                return False
            self._given_up = True
            return True

    def commit(self) -> None:
        """A last `check()`; after it the work is no longer stopped."""
        with self._lock:
            self.check()
            self._committed = True

    def error(self) -> DeadlineExceededError:
        limit = f"{self.seconds:g} s" if self.seconds is not None else "its time"
        return DeadlineExceededError(f"that took longer than {limit} and was stopped; "
                                     "try a shorter or smaller file")
