"""Files users send, fetched from Telegram within its limits.

The Bot API's `getFile` serves at most 20 MB, and the message already says how big a file
is, so an oversized one is refused before anything is downloaded. A file that Telegram does
not hand over (an error, a timeout, a dropped connection) is one `InputError` line.

The name a sender gave a file is never used: only its declared mime type travels on, for
`bot.core.uploads.staged_upload` to name the file (a name like ".." is no path to write to).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Message
from telegram.error import BadRequest, TelegramError, TimedOut

from memeswap.bot.core.uploads import too_big
from memeswap.inference.errors import InputError

log = logging.getLogger("memeswap.telegram")

_TEMPLATE_MIMES = ("video/", "image/gif")
_TELEGRAM_LIMIT = " from Telegram"  # whose limit a "too big" names


@dataclass(frozen=True)
class Attachment:
    """A file in a message: what `getFile` needs, and what we know before downloading it."""

    file_id: str
    file_unique_id: str
    size: int | None
    declared_type: str  # the mime type Telegram gives ("video/mp4"); the sender's file name is never kept


def image_in(message: Message | None) -> Attachment | None:
    """The photo in `message` (its largest size) or an image sent as a file, which keeps
    full quality; None when the message has neither."""
    if message is None:
        return None
    if message.photo:
        photo = message.photo[-1]
        return Attachment(photo.file_id, photo.file_unique_id, photo.file_size, "image/jpeg")
    document = message.document
    if (document is not None and document.mime_type is not None and document.mime_type.startswith("image/")
            and message.animation is None):
        return Attachment(document.file_id, document.file_unique_id, document.file_size, document.mime_type)
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
        # An animation or video without a type is an MP4: Telegram converts GIFs to it.
        return Attachment(media.file_id, media.file_unique_id, media.file_size, mime or "video/mp4")
    return None


# What a file that is neither an image nor a clip gets (a clip gets the "Swap my face into this" button).
NOT_AN_IMAGE = "That file isn't an image. Send me a selfie as a photo (or as a JPEG or PNG file)."


async def download(message: Message, attachment: Attachment, limit: int) -> bytes:
    """The file's bytes, or a one-line `InputError` when Telegram will not hand it over."""
    if attachment.size is not None and attachment.size > limit:
        raise too_big(limit, attachment.size, _TELEGRAM_LIMIT)
    try:
        file = await message.get_bot().get_file(attachment.file_id)
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise too_big(limit, attachment.size, _TELEGRAM_LIMIT) from None
        raise _not_fetched(error) from None
    except TelegramError as error:
        raise _not_fetched(error) from None
    if file.file_size is not None and file.file_size > limit:
        raise too_big(limit, file.file_size, _TELEGRAM_LIMIT)
    try:
        data = bytes(await file.download_as_bytearray())
    except TelegramError as error:
        raise _not_fetched(error) from None
    if len(data) > limit:
        raise too_big(limit, len(data), _TELEGRAM_LIMIT)
    return data


def _not_fetched(error: TelegramError) -> InputError:
    """Telegram's side failed (an error answer, a timeout, a dropped connection): worth another try."""
    log.warning("telegram: a file was not fetched: %s: %s", type(error).__name__, error.message)
    if isinstance(error, TimedOut):
        return InputError("Telegram took too long to hand over that file; please try again", code="download")
    return InputError("I couldn't fetch that file from Telegram; please try again", code="download")

