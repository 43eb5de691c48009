"""`/format`: which file type a person's memes come as in Telegram, picked with buttons.

Telegram plays two of the output formats inline: MP4 (the default; sent with sendAnimation
it shows as a GIF, or with sendVideo as a video when the template had sound) and GIF (sent
with sendAnimation, which Telegram turns into its own looping animation). An animated WebP
would arrive as a file to download, so it is not offered here.

The choice is kept in this bot process, per person, the most recent 10,000 people (like
the `file_id`s of sent memes): a restart goes back to MP4. /forget erases it.
"""

from __future__ import annotations

from collections import OrderedDict

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from memeswap.inference.media.formats.registry import media_format

TELEGRAM_FORMATS = ("mp4", "gif")  # the first is the default
PREFIX = "format:"


class FormatChoices:
    """Each person's chosen format, most recent kept (bounded)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._chosen: OrderedDict[int, str] = OrderedDict()

    def get(self, user_id: int) -> str:
        return self._chosen.get(user_id, TELEGRAM_FORMATS[0])

    def set(self, user_id: int, name: str) -> None:
        if name not in TELEGRAM_FORMATS:
            raise ValueError(f"not a Telegram format: {name[:40]!r}")
        self._chosen[user_id] = name
        self._chosen.move_to_end(user_id)
        while len(self._chosen) > self.capacity:
            self._chosen.popitem(last=False)

    def forget_user(self, user_id: int) -> None:
        self._chosen.pop(user_id, None)


def keyboard(current: str) -> InlineKeyboardMarkup:
    """One button per format, the current one ticked."""
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(f"✓ {media_format(name).title}" if name == current else media_format(name).title,
                             callback_data=f"{PREFIX}{name}")
        for name in TELEGRAM_FORMATS
    ]])


def parse(data: str | None) -> str | None:
    """The format a button names; None for anything this bot did not make."""
    if data is None or not data.startswith(PREFIX):
        return None
    name = data[len(PREFIX):]
    return name if name in TELEGRAM_FORMATS else None


def describe(name: str) -> str:
    return {"mp4": "MP4 (Telegram shows it as a GIF, or as a video when the template has sound)",
            "gif": "GIF"}[name]
