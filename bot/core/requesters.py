"""Who asks, and where: the facts an adapter establishes about a request before any use
case runs (the platform tells it whether the person is an admin of the guild or chat)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Literal

from memeswap.inference.errors import InputError
from memeswap.inference.templates.scope_keys import scope_key

ScopeKind = Literal["global", "guild", "chat", "user"]
_PLATFORM = re.compile(r"[a-z][a-z0-9]{0,19}")
_ID = re.compile(r"-?[0-9A-Za-z_]{1,40}")
_PLACE_KINDS: dict[str, ScopeKind] = {"guild": "guild", "chat": "chat", "user": "user"}


class NotAllowedError(InputError):
    code = "not_allowed"


@dataclass(frozen=True)
class Scope:
    """Where a custom template lives and who sees it: everyone (`global`, added by the
    operator), one Discord guild, one Telegram chat, or one user."""

    kind: ScopeKind
    platform: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind == "global":
            if self.platform or self.id:
                raise ValueError("the global scope has no platform or id")
            return
        if not _PLATFORM.fullmatch(self.platform) or not _ID.fullmatch(self.id):
            raise ValueError(f"bad scope {self.kind}:{self.platform}:{self.id}")

    @property
    def key(self) -> str:
        """A stable, path-safe name: "global", "discord-guild-123", "telegram-chat--100456"."""
        return "global" if self.kind == "global" else scope_key(self.platform, self.kind, self.id)

    @classmethod
    def from_key(cls, key: str) -> Scope:
        """The scope `key` names ("global", "discord-guild-123", "telegram-chat--100456"), as
        an operator types it; anything else is one clear line."""
        if key == "global":
            return GLOBAL
        platform, _, rest = key.partition("-")
        kind, _, scope_id = rest.partition("-")
        known = _PLACE_KINDS.get(kind)
        if known is not None:
            with contextlib.suppress(ValueError):
                return cls(known, platform, scope_id)
        shown = key if len(key) <= 40 else key[:40] + "…"
        raise InputError(f"unknown scope {shown!r}: use global, or PLATFORM-KIND-ID such as discord-guild-123 "
                         "or telegram-chat--100456 (KIND: guild, chat or user)", code="usage")


GLOBAL = Scope("global")


@dataclass(frozen=True)
class Requester:
    """A person on a platform, asking in `scope` (their guild or chat, or their own space in
    a direct message); `is_scope_admin` is the platform's verdict (Discord "Manage Server",
    Telegram group admin) and is always true in one's own user scope."""

    platform: str
    user_id: str
    scope: Scope
    is_scope_admin: bool = False
    is_operator: bool = False  # the deployment's operator, e.g. the CLI

    def __post_init__(self) -> None:
        if not _PLATFORM.fullmatch(self.platform) or not _ID.fullmatch(self.user_id):
            raise ValueError(f"bad requester {self.platform}:{self.user_id}")

    @classmethod
    def direct(cls, platform: str, user_id: str) -> Requester:
        """Someone in a private chat with the bot: their own scope, which they administer."""
        return cls(platform, user_id, Scope("user", platform, user_id), is_scope_admin=True)

    @property
    def user_key(self) -> str:
        """The unit of per-user limits in `SwapJob.user_key`."""
        return f"{self.platform}:{self.user_id}"

    def visible_scopes(self) -> list[Scope]:
        """The scopes whose templates this request may see: global, the place it is asked
        in, and the person's own."""
        scopes = [GLOBAL, self.scope]
        own = Scope("user", self.platform, self.user_id)
        if own not in scopes:
            scopes.append(own)
        return scopes

    def require_admin(self, scope: Scope, action: str) -> None:
        if self.is_operator:
            return
        if scope.kind == "global":
            raise NotAllowedError(f"only the bot's operator can {action} for everyone")
        if scope.kind == "user":
            if scope != Scope("user", self.platform, self.user_id):
                raise NotAllowedError(f"you can only {action} for yourself")
            return
        if scope != self.scope or not self.is_scope_admin:
            where = "server" if scope.kind == "guild" else "group"
            raise NotAllowedError(f"only an admin of this {where} can {action} here")
