"""The folder names of template scopes (no model, no pydantic: the command line imports it)."""

import re

# Where a guild's, chat's or user's own templates live: "<platform>-<kind>-<id>", e.g.
# "discord-guild-123", "telegram-chat--100456" (`scope_key` makes them; the bot's `Scope`
# uses it), safe as a folder name.
SCOPE_KEY = re.compile(r"[a-z][a-z0-9]*-(guild|chat|user)-[-0-9A-Za-z_]{1,41}")


def scope_key(platform: str, kind: str, scope_id: str) -> str:
    key = f"{platform}-{kind}-{scope_id}"
    if not SCOPE_KEY.fullmatch(key):
        raise ValueError(f"bad scope {kind}:{platform}:{scope_id}")
    return key
