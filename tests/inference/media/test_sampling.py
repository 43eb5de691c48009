"""SpreadSample: one frame picked at random from each part of a stream of unknown length."""

import random
import weakref
from collections import Counter

import pytest

from memeswap.inference.media.sampling import SpreadSample


def offered(count: int, samples: int, rng: random.Random | None = None) -> SpreadSample[int]:
    """A sample offered the positions 0 .. count - 1."""
    sample = SpreadSample(samples) if rng is None else SpreadSample(samples, rng)
    for index in range(count):
        sample.offer(index)
    return sample


@pytest.mark.parametrize("count", [0, 1, 7, 16, 17, 31, 32, 33, 100, 120, 301, 5000])
@pytest.mark.parametrize("samples", [1, 3, 8, 16])
def test_each_pick_lies_in_its_part_and_the_parts_cover_the_stream(count, samples):
    for _ in range(20):
        sample = offered(count, samples)
        picked, parts = sample.picked(), sample.parts()
        assert len(picked) == len(parts) == min(count, samples)
        assert all(index in part for index, part in zip(picked, parts))
        assert [index for part in parts for index in part] == list(range(count))  # in order, no gap
        if count > samples:  # about equal parts: none over twice or under a third of an even share
            assert all(count / samples / 3 <= len(part) <= 2 * count / samples for part in parts), parts


@pytest.mark.parametrize("count, samples", [(40, 8), (120, 16), (301, 16)])
def test_every_frame_gets_picked_sometimes(count, samples):
    """Nothing a clip's maker could count on being skipped: over many runs (the operating
    system's generator, as in use), every position is picked."""
    seen = Counter()
    for _ in range(60 * count // samples):
        seen.update(offered(count, samples).picked())
    assert sorted(seen) == list(range(count))


def test_picks_are_uniform_within_their_parts():
    """Over the doubling of the stride and the gathering of segments into parts, each
    position of a part is picked about as often as any other (a seeded generator, so the
    counts are fixed)."""
    rng = random.Random(12)
    count, samples, runs = 45, 4, 6000
    seen = Counter()
    for _ in range(runs):
        sample = offered(count, samples, rng)
        seen.update(sample.picked())
        parts = sample.parts()
    for part in parts:
        expected = runs / len(part)
        assert all(abs(seen[index] - expected) < 0.25 * expected for index in part), (part, seen)


class Frame:
    pass


@pytest.mark.parametrize("samples", [1, 4, 16])
def test_memory_stays_bounded_by_the_count(samples):
    """However long the stream, at most 2 * samples of its items are held at once."""
    alive: weakref.WeakSet = weakref.WeakSet()
    sample = SpreadSample(samples)
    most = 0
    for _ in range(3000):
        frame = Frame()
        alive.add(frame)
        sample.offer(frame)
        del frame
        most = max(most, len(alive))
    assert most <= 2 * samples
    assert len(sample.picked()) == samples


def test_samples_must_be_positive():
    with pytest.raises(ValueError):
        SpreadSample(0)
