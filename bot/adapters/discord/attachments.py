"""What people attach, checked before it is used: the declared type, the size Discord
announces (before any download), then the bytes themselves (decoded by the use cases).

Every download goes through the bot's `SafeDownloader`, and a file is staged by
`bot.core.uploads.staged_upload`: what a person called a file never becomes a path."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

import discord

from memeswap.bot.core.uploads import too_big
from memeswap.inference.errors import InputError

IMAGE = ("image/",)
CLIP = ("image/gif", "video/", "image/webp", "image/apng", "image/png")  # what a template may be
_MIME_TYPE = re.compile(r"[a-z0-9.+-]{1,30}/[a-z0-9.+-]{1,40}")


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
        raise too_big(limit, media.size)


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

