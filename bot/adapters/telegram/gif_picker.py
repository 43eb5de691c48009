"""The inline keyboard of GIF search results: one button per result, its title and size,
whose callback data is "gif:ID" (an id as the providers make them, within Telegram's 64
bytes). What a client sends back is checked against that shape and nothing else is used."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from memeswap.bot.gif_providers.base import RESULT_ID, GifResult

PREFIX = "gif:"
PATTERN = rf"^{PREFIX}"  # the callback data the GIF button handler takes


def keyboard(results: list[GifResult]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(r.label, callback_data=PREFIX + r.id)] for r in results])


def parse(data: str | None) -> str | None:
    """The result id a button carries, or None for data this bot did not make."""
    if data is None or not data.startswith(PREFIX):
        return None
    chosen = data[len(PREFIX):]
    return chosen if RESULT_ID.fullmatch(chosen) else None
