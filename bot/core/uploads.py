"""Files people send, the same on every platform: how one that is too big is refused, and
where one is put while it is used.

A file is staged under a name of the bot's choosing, `upload` and an extension from its
declared type: what a person called a file never becomes a path (a name like ".." is none
to write to), and a template made from it says "added from upload.gif" on any platform.
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from memeswap.inference.errors import InputError
from memeswap.inference.sizes import human_bytes

STAGED_STEM = "upload"
# The common types first, the same on every host (the system's mime.types may say ".mpv"
# for Matroska); anything else as `mimetypes` knows it, or ".bin".
_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "image/bmp": ".bmp",
    "image/tiff": ".tiff", "image/apng": ".apng", "video/mp4": ".mp4", "video/quicktime": ".mov",
    "video/webm": ".webm", "video/x-matroska": ".mkv", "video/mpeg": ".mpg",
}
_SAFE_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")


def too_big(limit: int, size: int | None = None, where: str = "") -> InputError:
    """The one refusal of a file over `limit` bytes, whichever check found it (a size announced
    before the download, or the bytes themselves). `size` is said when known; `where` names
    whose limit it is (" from Telegram")."""
    what = f"That file is {human_bytes(size)}" if size is not None and size > limit else "That file is too big"
    return InputError(f"{what}; I can take files up to {human_bytes(limit)}{where}. Send a smaller one",
                      code="too_large")


def staged_name(declared_type: str | None) -> str:
    """`upload` and the extension of `declared_type` (a mime type, parameters allowed), ".bin"
    for a type without one."""
    kind = (declared_type or "").split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ""
    return STAGED_STEM + (extension if _SAFE_EXTENSION.fullmatch(extension) else ".bin")


@contextlib.contextmanager
def staged_upload(data: bytes, declared_type: str | None, prefix: str) -> Iterator[Path]:
    """`data` in a file of a new temporary folder (named `prefix`...), under `staged_name`;
    the folder is removed when the block ends, however it ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        path = Path(folder) / staged_name(declared_type)
        path.write_bytes(data)
        yield path
