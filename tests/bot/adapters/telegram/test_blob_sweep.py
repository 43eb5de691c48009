"""Selfies nobody followed to the end (the bot stopped, a follower died) do not stay in the
data folder: the bot sweeps expired blobs and half-written files at start and while it runs."""

from __future__ import annotations

import asyncio
import os
import time


def test_expired_selfies_are_swept_at_start_and_while_the_bot_runs(telegram_bot, tmp_path):
    blobs = tmp_path / "data" / "blobs"
    blobs.mkdir(parents=True)
    now = time.time()

    def blob_file(name: str, stamp: float) -> str:
        (blobs / name).write_bytes(b"a selfie")
        os.utime(blobs / name, (stamp, stamp))
        return name

    blob_file("a" * 32, now - 60)  # expired: the selfie of a job whose follower died
    blob_file(f".{'b' * 32}.tmp", now - 7200)  # a write a crash cut short, two hours ago
    live = blob_file("c" * 32, now + 3600)

    async def main():
        async with telegram_bot(blob_sweep_interval_s=0.2) as (fake, services):
            after_start = sorted(path.name for path in blobs.iterdir())
            ref = await asyncio.to_thread(services.blobs.put, b"a selfie", 0.5)
            stored = (blobs / ref).exists()
            deadline = time.monotonic() + 10
            while (blobs / ref).exists() and time.monotonic() < deadline:  # nobody reads it: only a sweep takes it
                await asyncio.sleep(0.05)
            return after_start, stored, sorted(path.name for path in blobs.iterdir())

    after_start, stored, at_the_end = asyncio.run(main())
    assert after_start == [live]
    assert stored
    assert at_the_end == [live]  # the blob that expired while the bot ran went too
