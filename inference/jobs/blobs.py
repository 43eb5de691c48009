"""Where bytes live while a job refers to them: selfies going in, results coming out.

Queue messages carry only a blob reference, so the queue stays small and a result can be
fetched by whichever process posts it. The methods are blocking (file or network I/O):
code on an event loop calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from memeswap.inference.errors import InputError

log = logging.getLogger("memeswap.jobs")

_REF = re.compile(r"[0-9a-f]{32}")


def is_blob_ref(ref: object) -> bool:
    """Whether `ref` has the shape of a reference this module hands out (and so is safe to
    put into a file name or a key)."""
    return isinstance(ref, str) and _REF.fullmatch(ref) is not None


class BlobNotFoundError(InputError):
    """The reference is unknown, malformed, deleted or past its time to live.

    An `InputError` because the usual cause is an upload that waited too long, which the
    user fixes by sending it again.
    """

    code = "blob_missing"


@runtime_checkable
class BlobStore(Protocol):
    def put(self, data: bytes, ttl_s: float) -> str:
        """Store `data` for `ttl_s` seconds; returns an opaque reference."""

    def get(self, ref: str) -> bytes:
        """The stored bytes; `BlobNotFoundError` when missing or expired."""

    def delete(self, ref: str) -> None:
        """Forget the blob; deleting a missing one is not an error."""


class LocalBlobStore:
    """Blobs as files in one folder, for a single host.

    A blob's expiry time is kept as its file's modification time, so no index file has to
    stay consistent with the blobs. Writes go to a temporary name and are renamed into
    place, so a reader never sees half a blob.
    """

    def __init__(self, folder: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._clock = clock

    def put(self, data: bytes, ttl_s: float) -> str:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        ref = secrets.token_hex(16)
        final = self.folder / ref
        temporary = self.folder / f".{ref}.tmp"
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            expires = self._clock() + ttl_s
            os.utime(temporary, (expires, expires))
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return ref

    def get(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            expires = path.stat().st_mtime
            if expires < self._clock():
                path.unlink(missing_ok=True)
                raise BlobNotFoundError("the file for this job has expired; send it again")
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError("the file for this job is gone; send it again") from None

    def delete(self, ref: str) -> None:
        if is_blob_ref(ref):
            (self.folder / ref).unlink(missing_ok=True)

    def sweep(self, stale_temporary_after_s: float = 3600.0) -> int:
        """Delete expired blobs, and temporary files that a `put` cut short (a crash) left
        more than `stale_temporary_after_s` ago; returns how many went.

        A temporary file's modification time is when it was written, or the expiry `put`
        stamps on it just before the rename, so a write in progress is never taken.
        """
        now = self._clock()
        removed = 0
        for path in self.folder.iterdir():
            try:
                stamped = path.stat().st_mtime
                stale = path.name.endswith(".tmp") and stamped < now - stale_temporary_after_s
                if stale or (is_blob_ref(path.name) and stamped < now):
                    path.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _path(self, ref: str) -> Path:
        if not is_blob_ref(ref):
            # Never turn a ref into an arbitrary path (e.g. "../../etc/passwd").
            raise BlobNotFoundError("the file for this job is gone; send it again")
        return self.folder / ref


@contextlib.asynccontextmanager
async def swept(store: BlobStore, interval_s: float) -> AsyncIterator[None]:
    """While the block runs, keep `store` free of expired blobs: sweep once before it starts
    (what a previous run left, e.g. the selfie of a job whose follower died) and every
    `interval_s` after. Only a store with a `sweep()` needs this; Redis expires its blobs
    by itself, so for a `RedisBlobStore` this does nothing."""
    sweep = getattr(store, "sweep", None)
    if sweep is None:
        yield
        return
    await _sweep_once(sweep)

    async def keep_sweeping() -> None:
        while True:
            await asyncio.sleep(interval_s)
            await _sweep_once(sweep)

    task = asyncio.create_task(keep_sweeping(), name="blob-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _sweep_once(sweep: Callable[[], int]) -> None:
    try:
        removed = await asyncio.to_thread(sweep)
    except OSError as error:  # the folder went away or became unreadable: say so, try again later
        log.warning("blob sweep failed: %s", error)
        return
    if removed:
        log.info("blob sweep removed %d expired file(s)", removed)
