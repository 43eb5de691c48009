"""The chat platforms `memeswap serve` can serve, by name.

Adding one is one new package under `bot/adapters/` whose adapter class follows
`serve.ChatAdapter`, one line here, and its token's field in `Settings`, named
`<platform>_token` (`MEMESWAP_<PLATFORM>_TOKEN`). `memeswap serve` runs every adapter whose
token is set, in this order.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memeswap.bot.serve import ChatAdapter

# platform -> "module:class", imported only when its token is set
ADAPTERS: dict[str, str] = {
    "telegram": "memeswap.bot.adapters.telegram.application:TelegramAdapter",
    "discord": "memeswap.bot.adapters.discord.client:DiscordAdapter",
}

# platform -> the Settings field of its token (known without importing the adapter)
TOKEN_SETTINGS: dict[str, str] = {platform: f"{platform}_token" for platform in ADAPTERS}


def adapter_class(platform: str) -> type[ChatAdapter]:
    module, _, attribute = ADAPTERS[platform].partition(":")
    return getattr(import_module(module), attribute)
