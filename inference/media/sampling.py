"""Frames sampled at random over a clip whose length is known only at its end."""

import random
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# How many frames, spread over the frames actually decoded, a template's content screens look at.
SCREENED_FRAMES = 16


class SpreadSample(Generic[T]):
    """Up to `samples` items of a stream, one picked uniformly at random from each of
    `samples` consecutive, about equal parts of it, by the items' real positions (what a
    content screen looks at: the frames actually decoded, never a count a file declares
    about itself). Positions known in advance could be left clean by whoever made the clip;
    random ones, drawn from the operating system's generator, cannot.

    While the stream goes by, it is cut into segments of `stride` items, and each segment
    keeps one of its items, chosen uniformly (a reservoir of one: its n-th item replaces the
    kept one with probability 1/n). When 2 * samples full segments are held and another
    begins, neighbours merge two by two, each keeping either kept item with probability 1/2
    (still uniform over the merged segment), and the stride doubles; so at most 2 * samples
    items are held at once. At the end the segments are gathered into `samples` parts whose
    bounds are the segment bounds nearest to an even split, and each part's pick is one of
    its segments' kept items, chosen in proportion to the segments' lengths: an item
    uniformly at random from the whole part."""

    def __init__(self, samples: int, rng: random.Random | None = None) -> None:
        """`rng`: the generator to draw from (the operating system's by default; tests pass
        a seeded one)."""
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        self.samples = samples
        self._rng = rng or random.SystemRandom()
        self._stride = 1
        self._kept: list[T] = []  # one item per segment
        self._count = 0
        self._in_segment = 0  # items seen of the last segment

    def offer(self, item: T) -> None:
        """The stream's next item."""
        if self._count % self._stride == 0:
            if len(self._kept) == 2 * self.samples:
                self._kept = [pair[self._rng.getrandbits(1)] for pair in zip(self._kept[::2], self._kept[1::2])]
                self._stride *= 2
            self._kept.append(item)
            self._in_segment = 1
        else:
            self._in_segment += 1
            if self._rng.randrange(self._in_segment) == 0:
                self._kept[-1] = item
        self._count += 1

    def passing(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, unchanged, offered on their way through."""
        for item in items:
            self.offer(item)
            yield item

    def parts(self) -> list[range]:
        """The positions each pick of `picked` comes from: `samples` consecutive parts of
        the stream so far (one per item for a stream of `samples` or fewer)."""
        bounds = self._part_bounds()
        return [range(start, stop) for start, stop in zip(bounds, bounds[1:])]

    def picked(self) -> list[T]:
        """One item picked at random from each of `parts()`, in stream order."""
        bounds = self._part_bounds()
        picks = []
        for start, stop in zip(bounds, bounds[1:]):
            offset = start + self._rng.randrange(stop - start)  # a position of the part, uniformly
            picks.append(self._kept[offset // self._stride])  # its segment's kept item
        return picks

    def _part_bounds(self) -> list[int]:
        """0, the segment bounds nearest to each of the `samples` - 1 even split points, and
        the stream's length. Segments are `stride` long (the last one maybe shorter) and the
        split points more than `stride` apart whenever there are more segments than parts,
        so the bounds strictly increase: no part is empty."""
        if self._count == 0:
            return [0]
        segment_bounds = [i * self._stride for i in range(1, len(self._kept))]
        if len(self._kept) <= self.samples:
            return [0, *segment_bounds, self._count]
        inner = []
        for k in range(1, self.samples):
            split = self._count * k / self.samples
            inner.append(min(segment_bounds, key=lambda bound: abs(bound - split)))
        return [0, *inner, self._count]
