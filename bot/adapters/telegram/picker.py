"""The inline keyboard of templates: pages of buttons whose callback data stays within
Telegram's 64 bytes: "SOURCE:NAME" to pick (a template name has at most 32 characters) and
"SOURCE-page:N" to turn the page, where SOURCE says whose face a pick uses: "photo" (the
photo the keyboard replies to) or "face" (the person's saved face)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from memeswap.bot.core.templates import TemplateInfo, added_here_first
from memeswap.inference.templates.manifest import NAME_PATTERN

SOURCES = ("photo", "face")
COLUMNS = 2
MAX_CALLBACK_BYTES = 64
_PAGE = re.compile(r"[0-9]{1,4}")  # ASCII digits only: str.isdigit() is true for "²"


@dataclass(frozen=True)
class Choice:
    source: str  # "photo" or "face"
    template: str | None = None  # a pick
    page: int | None = None  # a turn of the page


def parse(data: str | None) -> Choice | None:
    """The button pressed, or None for data this bot did not make (clients may send anything):
    "SOURCE:NAME" where NAME passes the template name rule, or "SOURCE-page:N" with N at most
    four ASCII digits."""
    if data is None or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    head, _, value = data.partition(":")
    source = head.partition("-")[0]
    if source not in SOURCES:
        return None
    if head == f"{source}-page" and _PAGE.fullmatch(value):
        return Choice(source, page=int(value))
    if head == source and NAME_PATTERN.fullmatch(value):
        return Choice(source, template=value)
    return None


def by_name(templates: list[TemplateInfo]) -> list[TemplateInfo]:
    """One button per name, in the preview sheet's order (`added_here_first`)."""
    return added_here_first(templates)


def keyboard(templates: list[TemplateInfo], source: str, page: int, per_page: int) -> InlineKeyboardMarkup:
    """Page `page` (clamped) of the templates, with ‹ › buttons when there are more pages."""
    unique = by_name(templates)
    pages = max(1, -(-len(unique) // per_page))
    page = min(max(page, 0), pages - 1)
    shown = unique[page * per_page:(page + 1) * per_page]
    rows = [[_button(info, source) for info in shown[i:i + COLUMNS]] for i in range(0, len(shown), COLUMNS)]
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(InlineKeyboardButton("‹ Back", callback_data=f"{source}-page:{page - 1}"))
        nav.append(InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=f"{source}-page:{page}"))
        if page < pages - 1:
            nav.append(InlineKeyboardButton("More ›", callback_data=f"{source}-page:{page + 1}"))
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


def _button(info: TemplateInfo, source: str) -> InlineKeyboardButton:
    data = f"{source}:{info.name}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:  # names are at most 32 characters; a guard, not a path
        raise ValueError(f"template name too long for a button: {info.name!r}")
    title = info.title if len(info.title) <= 28 else info.title[:27] + "…"
    return InlineKeyboardButton(f"★ {title}" if info.added_here else title,
                                callback_data=data)
