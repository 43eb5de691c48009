"""Where bytes live while a job refers to them: selfies going in, results coming out.

Queue messages carry only a blob reference, so the queue stays small and a result can be
fetched by whichever process posts it. The methods are blocking (file or network I/O):
code on an event loop calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from inference.errors import InputError

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

    def sweep(self) -> int:
        """Delete expired blobs and stale temporary files; returns how many went."""
        now = self._clock()
        removed = 0
        for path in self.folder.iterdir():
            try:
                stale = path.name.endswith(".tmp") and path.stat().st_ctime < time.time() - 3600
                if stale or (is_blob_ref(path.name) and path.stat().st_mtime < now):
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
