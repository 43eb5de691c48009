"""What people attach, checked before it is used: the declared type, the size Discord
announces (before any download), then the bytes themselves (decoded by the use cases).

Every download goes through the bot's `SafeDownloader`, and a file is staged under a fixed
name of the bot's choosing: what a person called a file never becomes a path."""

from __future__ import annotations

import contextlib
import mimetypes
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import discord

from inference.errors import InputError
from inference.media.limits import human_bytes

IMAGE = ("image/",)
CLIP = ("image/gif", "video/", "image/webp", "image/apng", "image/png")  # what a template may be
_MIME_TYPE = re.compile(r"[a-z0-9.+-]{1,30}/[a-z0-9.+-]{1,40}")
_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")


@dataclass(frozen=True)
class Media:
    """A file to fetch: an attachment, or an embed's GIF, video or image. `filename` only
    hints at the type; it is never used as a path."""

    url: str
    filename: str
    content_type: str
    size: int | None


def declared_type(filename: str, content_type: str | None) -> str:
    return (content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream").split(";")[0]


def checked(attachment: discord.Attachment, kinds: tuple[str, ...], what: str, limit: int) -> Media:
    """`attachment` as `Media` when its declared type and size fit, else a one-line refusal."""
    kind = declared_type(attachment.filename, attachment.content_type)
    if not kind.startswith(kinds):
        shown = kind if _MIME_TYPE.fullmatch(kind) else "another kind of file"
        raise InputError(f"that attachment isn't {what} (it is {shown}); attach {what}", code="bad_media")
    media = Media(attachment.url, attachment.filename, kind, attachment.size)
    require_within(media, limit)
    return media


def require_within(media: Media, limit: int) -> None:
    """Refuse from the size Discord announced, before downloading anything."""
    if media.size is not None and media.size > limit:
        raise InputError(f"that file is {human_bytes(media.size)}; the most I take is {human_bytes(limit)}",
                         code="too_large")


def media_in(message: discord.Message) -> Media | None:
    """The GIF, video or image a message shows: its first such attachment, else an embed's
    (a Tenor/Giphy link shows as a "gifv" embed whose video is the animation), fetched
    through Discord's media proxy when the embed names it."""
    for attachment in message.attachments:
        kind = declared_type(attachment.filename, attachment.content_type)
        if kind.startswith(CLIP) or kind.startswith(IMAGE):
            return Media(attachment.url, attachment.filename, kind, attachment.size)
    for embed in message.embeds:
        for shown in (embed.video, embed.image, embed.thumbnail):
            url = shown.proxy_url or shown.url
            if url:
                filename = url.split("?")[0].rsplit("/", 1)[-1] or "media"
                kind = declared_type(filename, None)
                if embed.type == "gifv" and not kind.startswith(CLIP):
                    kind, filename = "video/mp4", filename + ".mp4"
                if kind.startswith(CLIP) or kind.startswith(IMAGE):
                    return Media(url, filename, kind, None)
    return None


@contextlib.contextmanager
def staged(data: bytes, media: Media, prefix: str) -> Iterator[Path]:
    """`data` in a temporary file named by the bot (`upload` and the declared type's
    extension), removed afterwards."""
    extension = mimetypes.guess_extension(media.content_type) or ""
    if not _EXTENSION.fullmatch(extension):
        extension = ".bin"
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        path = Path(folder) / f"upload{extension}"
        path.write_bytes(data)
        yield path
