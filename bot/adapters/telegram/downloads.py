"""Files users send, fetched from Telegram within its limits.

The Bot API's `getFile` serves at most 20 MB, and the message already says how big a file
is, so an oversized one is refused before anything is downloaded.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from telegram import Message
from telegram.error import BadRequest

from inference.errors import InputError
from inference.media.limits import human_bytes

_TEMPLATE_MIMES = ("video/", "image/gif")


@dataclass(frozen=True)
class Attachment:
    """A file in a message: what `getFile` needs, and what we know before downloading it."""

    file_id: str
    file_unique_id: str
    size: int | None
    file_name: str


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
                          document.file_name or "image" + (mimetypes.guess_extension(document.mime_type) or ""))
    return None


def clip_in(message: Message | None) -> Attachment | None:
    """The GIF or video in `message`, to become a template; None when it has none."""
    if message is None:
        return None
    for media, default_name in ((message.animation, "clip.mp4"), (message.video, "clip.mp4"),
                                (message.document, "clip")):
        if media is None:
            continue
        mime = media.mime_type or ""
        if media is message.document and not mime.startswith(_TEMPLATE_MIMES):
            continue
        name = media.file_name or default_name
        if "." not in name:
            name += mimetypes.guess_extension(mime) or ".mp4"
        return Attachment(media.file_id, media.file_unique_id, media.file_size, name)
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
        raise InputError("I couldn't fetch that file from Telegram; please send it again", code="download") from None
    if file.file_size is not None and file.file_size > limit:
        raise _too_big(file.file_size, limit)
    data = bytes(await file.download_as_bytearray())
    if len(data) > limit:
        raise _too_big(len(data), limit)
    return data


def _too_big(size: int | None, limit: int) -> InputError:
    what = f"That file is {human_bytes(size)}" if size else "That file is too big"
    return InputError(f"{what}; I can fetch files up to {human_bytes(limit)} from Telegram. "
                      "Send a smaller one", code="too_large")
