"""Files users send, fetched from Telegram within its limits.

The Bot API's `getFile` serves at most 20 MB, and the message already says how big a file
is, so an oversized one is refused before anything is downloaded. A file that Telegram does
not hand over (an error, a timeout, a dropped connection) is one `InputError` line.

The name a sender gave a file is never used: a file is stored under a fixed name with an
extension from its declared mime type (a name like ".." is no path to write to).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Message
from telegram.error import BadRequest, TelegramError, TimedOut

from inference.errors import InputError
from inference.media.limits import human_bytes

log = logging.getLogger("memeswap.telegram")

_TEMPLATE_MIMES = ("video/", "image/gif")
_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "image/bmp": ".bmp",
    "image/tiff": ".tiff", "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
    "video/x-matroska": ".mkv", "video/mpeg": ".mpg",
}


@dataclass(frozen=True)
class Attachment:
    """A file in a message: what `getFile` needs, and what we know before downloading it."""

    file_id: str
    file_unique_id: str
    size: int | None
    safe_name: str  # "clip.gif", "image.png", ...: never the sender's, safe as the last part of a path


def _safe_name(stem: str, mime: str | None, default_extension: str) -> str:
    return stem + _EXTENSIONS.get((mime or "").lower(), default_extension)


def image_in(message: Message | None) -> Attachment | None:
    """The photo in `message` (its largest size) or an image sent as a file, which keeps
    full quality; None when the message has neither."""
    if message is None:
        return None
    if message.photo:
        photo = message.photo[-1]
        return Attachment(photo.file_id, photo.file_unique_id, photo.file_size, "photo.jpg")
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/") and message.animation is None:
        return Attachment(document.file_id, document.file_unique_id, document.file_size,
                          _safe_name("image", document.mime_type, ""))
    return None


def clip_in(message: Message | None) -> Attachment | None:
    """The GIF or video in `message`, to become a template; None when it has none."""
    if message is None:
        return None
    for media in (message.animation, message.video, message.document):
        if media is None:
            continue
        mime = media.mime_type or ""
        if media is message.document and not mime.startswith(_TEMPLATE_MIMES):
            continue
        return Attachment(media.file_id, media.file_unique_id, media.file_size, _safe_name("clip", mime, ".mp4"))
    return None


def not_an_image(message: Message) -> str:
    """What to say about a file that is not an image."""
    if clip_in(message) is not None:
        return ("That's a clip, not a selfie. To make it a template, send it again with the caption "
                "/addtemplate NAME.")
    return "That file isn't an image. Send me a selfie as a photo (or as a JPEG or PNG file)."


async def download(message: Message, attachment: Attachment, limit: int) -> bytes:
    """The file's bytes, or a one-line `InputError` when Telegram will not hand it over."""
    if attachment.size is not None and attachment.size > limit:
        raise _too_big(attachment.size, limit)
    try:
        file = await message.get_bot().get_file(attachment.file_id)
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise _too_big(attachment.size, limit) from None
        raise _not_fetched(error) from None
    except TelegramError as error:
        raise _not_fetched(error) from None
    if file.file_size is not None and file.file_size > limit:
        raise _too_big(file.file_size, limit)
    try:
        data = bytes(await file.download_as_bytearray())
    except TelegramError as error:
        raise _not_fetched(error) from None
    if len(data) > limit:
        raise _too_big(len(data), limit)
    return data


def _not_fetched(error: TelegramError) -> InputError:
    """Telegram's side failed (an error answer, a timeout, a dropped connection): worth another try."""
    log.warning("telegram: a file was not fetched: %s: %s", type(error).__name__, error.message)
    if isinstance(error, TimedOut):
        return InputError("Telegram took too long to hand over that file; please try again", code="download")
    return InputError("I couldn't fetch that file from Telegram; please try again", code="download")


def _too_big(size: int | None, limit: int) -> InputError:
    what = f"That file is {human_bytes(size)}" if size else "That file is too big"
    return InputError(f"{what}; I can fetch files up to {human_bytes(limit)} from Telegram. "
                      "Send a smaller one", code="too_large")
