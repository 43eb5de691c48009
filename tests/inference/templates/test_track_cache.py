"""The face-track cache: entries by media hash, removed by it, and kept under a byte cap by
evicting the least recently used."""

import os

import numpy as np

from memeswap.inference.templates.compile import TemplateTracks, TrackCache
from memeswap.inference.templates.tracks import FaceTrack


def tracks(frames: int) -> TemplateTracks:
    rng = np.random.default_rng(frames)  # random: compresses badly, so sizes are predictable
    track = FaceTrack(np.arange(frames), rng.random((frames, 5, 2), np.float32), None,
                      rng.random((frames, 4), np.float32), rng.random(frames, np.float32))
    return TemplateTracks(64, 64, frames, [track])


def age(cache: TrackCache, digest: str, seconds_ago: float) -> None:
    path = cache.path_for(digest, "v1")
    then = path.stat().st_mtime - seconds_ago
    os.utime(path, (then, then))


def test_remove_takes_every_entry_of_one_media_file(tmp_path):
    cache = TrackCache(tmp_path)
    cache.store("a" * 64, "v1", tracks(10))
    cache.store("a" * 64, "v2", tracks(10))
    cache.store("b" * 64, "v1", tracks(10))
    cache.remove("a" * 64)
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.npz")] == ["b" * 64]
    assert cache.load("a" * 64, "v1") is None and cache.load("b" * 64, "v1").frame_count == 10


def test_the_byte_cap_evicts_the_least_recently_used(tmp_path):
    probe = TrackCache(tmp_path / "probe")
    probe.store("x" * 64, "v1", tracks(200))
    size = probe.path_for("x" * 64, "v1").stat().st_size
    cache = TrackCache(tmp_path / "cache", max_bytes=int(size * 2.5))
    cache.store("a" * 64, "v1", tracks(200))
    age(cache, "a" * 64, 30)
    cache.store("b" * 64, "v1", tracks(200))
    age(cache, "b" * 64, 20)
    assert cache.load("a" * 64, "v1") is not None  # used now: the most recent
    cache.store("c" * 64, "v1", tracks(200))  # three do not fit: the least recently used goes
    assert cache.load("b" * 64, "v1") is None
    assert cache.load("a" * 64, "v1") is not None and cache.load("c" * 64, "v1") is not None


def test_an_entry_larger_than_the_cap_is_kept_alone(tmp_path):
    cache = TrackCache(tmp_path, max_bytes=1)
    cache.store("a" * 64, "v1", tracks(50))
    cache.store("b" * 64, "v1", tracks(50))
    assert [p.name[:1] for p in tmp_path.glob("*.npz")] == ["b"]
