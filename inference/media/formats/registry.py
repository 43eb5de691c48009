"""The output formats memeswap writes, by name (`--format`, a job's `format`).

Adding one is one new module in this package with a `MediaFormat` subclass and one line
here; the command line, the job contract and the encoder take their lists from it.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memeswap.inference.media.formats.base import MediaFormat

# name -> "module:class", imported on first use
FORMATS: dict[str, str] = {
    "gif": "memeswap.inference.media.formats.gif:GifFormat",
    "mp4": "memeswap.inference.media.formats.mp4:Mp4Format",
    "webp": "memeswap.inference.media.formats.webp:WebpFormat",
}


@cache
def media_format(name: str) -> MediaFormat:
    try:
        module, _, attribute = FORMATS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown output format {name!r}; use one of {', '.join(FORMATS)}") from None
    return getattr(import_module(module), attribute)()
