"""What people attach, checked before it is used: the declared type, the size Discord
announces (before any download), then the bytes themselves (decoded by the use cases)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

import discord

from inference.errors import InputError
from inference.media.limits import human_bytes

IMAGE = ("image/",)
CLIP = ("image/gif", "video/", "image/webp", "image/apng", "image/png")  # what a template may be


@dataclass(frozen=True)
class Media:
    """A file to fetch: an attachment, or an embed's GIF, video or image."""

    url: str
    filename: str
    content_type: str
    size: int | None
    attachment: discord.Attachment | None = None


def declared_type(filename: str, content_type: str | None) -> str:
    return (content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream").split(";")[0]


def checked(attachment: discord.Attachment, kinds: tuple[str, ...], what: str, limit: int) -> Media:
    """`attachment` as `Media` when its declared type and size fit, else a one-line refusal."""
    kind = declared_type(attachment.filename, attachment.content_type)
    if not kind.startswith(kinds):
        raise InputError(f"that attachment isn't {what} (it is {kind}); attach {what}", code="bad_media")
    media = Media(attachment.url, attachment.filename, kind, attachment.size, attachment)
    require_within(media, limit)
    return media


def require_within(media: Media, limit: int) -> None:
    """Refuse from the size Discord announced, before downloading anything."""
    if media.size is not None and media.size > limit:
        raise _too_big(media.size, limit)


def media_in(message: discord.Message) -> Media | None:
    """The GIF, video or image a message shows: its first such attachment, else an embed's
    (a Tenor/Giphy link shows as a "gifv" embed whose video is the animation)."""
    for attachment in message.attachments:
        kind = declared_type(attachment.filename, attachment.content_type)
        if kind.startswith(CLIP) or kind.startswith(IMAGE):
            return Media(attachment.url, attachment.filename, kind, attachment.size, attachment)
    for embed in message.embeds:
        for url in (embed.video.url, embed.image.url, embed.thumbnail.url):
            if url:
                filename = url.split("?")[0].rsplit("/", 1)[-1] or "media"
                kind = declared_type(filename, None)
                if embed.type == "gifv" and not kind.startswith(CLIP):
                    kind, filename = "video/mp4", filename + ".mp4"
                if kind.startswith(CLIP) or kind.startswith(IMAGE):
                    return Media(url, filename, kind, None)
    return None


async def fetch(client: discord.Client, media: Media, limit: int) -> bytes:
    """The bytes, within `limit` whatever the size Discord announced."""
    try:
        data = await (media.attachment.read() if media.attachment else client.http.get_from_cdn(media.url))
    except discord.HTTPException:
        raise InputError("I couldn't download that file from Discord; please try again", code="download") from None
    if len(data) > limit:
        raise _too_big(len(data), limit)
    return data


def _too_big(size: int, limit: int) -> InputError:
    return InputError(f"that file is {human_bytes(size)}; the most I take is {human_bytes(limit)}", code="too_large")
