"""Frames spread evenly over a clip whose length is known only at its end."""

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class SpreadSample(Generic[T]):
    """Collects up to `samples` items spread evenly over a stream, by their real position in
    it, while the stream goes by (what a content screen looks at: the frames actually
    decoded, never a count a file declares about itself).

    At most about 2 * samples items are held at once: every `stride`-th item is kept and,
    when too many are held, every other one is dropped and the stride doubles. The last
    item is kept too. Then each of `samples` evenly spread positions takes the nearest kept
    item: kept items lie at most `stride` apart and the targets more than `stride` apart, so
    no kept item is taken twice, and each pick is within stride / 2 (less than half the even
    spacing) of its target; the first and the last item are always picked."""

    def __init__(self, samples: int) -> None:
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        self.samples = samples
        self._stride = 1
        self._kept: list[tuple[int, T]] = []
        self._last: tuple[int, T] | None = None
        self._count = 0

    def offer(self, item: T) -> None:
        """The stream's next item."""
        index = self._count
        self._count += 1
        self._last = (index, item)
        if index % self._stride == 0:
            self._kept.append(self._last)
            if len(self._kept) > 2 * self.samples:
                self._kept = self._kept[::2]
                self._stride *= 2

    def passing(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, unchanged, offered on their way through."""
        for item in items:
            self.offer(item)
            yield item

    def picked(self) -> list[T]:
        """The spread items, in stream order (all of them for a stream of `samples` or fewer)."""
        if self._last is None:
            return []
        kept = list(self._kept)
        if kept[-1][0] != self._last[0]:
            kept.append(self._last)
        if len(kept) <= self.samples:
            return [item for _, item in kept]
        numbers = np.array([index for index, _ in kept])
        targets = np.linspace(0, self._last[0], self.samples) if self.samples > 1 else np.zeros(1)
        nearest = np.abs(numbers[None, :] - targets[:, None]).argmin(axis=1)
        return [kept[i][1] for i in sorted(set(nearest.tolist()))]
