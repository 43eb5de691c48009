"""A protocol-level fake of the Discord REST API (v10) and gateway, for tests.

`FakeDiscord` is an aiohttp server on 127.0.0.1:<free port> that speaks enough of Discord for
the real discord.py 2.7 client (`Client`, `commands.Bot`, `AutoShardedBot`, `app_commands`) to
log in, connect, sync commands and answer interactions against it. Tests set up guilds,
channels and members, play the users (`slash_command`, `autocomplete`,
`message_context_menu`, `press_button`, `message`) and read back what the bot did
(`callbacks`, `original_history`, `followups`, `channel_messages`, `file_bytes`, `requests`).
Files (attachments, embed media, the hostile `redirect` and `streamed` links) are served from
the same loopback origin, and every download of one is in `requests` too (`kind: "file"`,
with the bytes actually sent).
`patch_client()` points discord.py at the fake and `running(bot)` starts a bot against it.

Wire format, as discord.py 2.7.1 speaks it:

* REST lives under `/api/v10` (`discord.http.Route.BASE`). Bot calls carry
  `Authorization: Bot <token>`; a wrong token answers 401 `{"message": "401: Unauthorized",
  "code": 0}`, which `HTTPClient.static_login` turns into `LoginFailure`. Interaction callbacks
  and webhook calls (`/interactions/{id}/{token}/callback`, `/webhooks/{app}/{token}...`)
  carry no Authorization header: the token in the path is the credential.
* Bodies are `application/json`, or `multipart/form-data` when files are sent: one
  `payload_json` part with the JSON body and one `files[n]` part per file (discord.py sends
  them with `Content-Type: application/octet-stream`), matched by `attachments[i].id == n`.
* Errors use Discord's envelope `{"code": ..., "message": ...}` (plus `errors` for 50035).
  A 429 answers `{"message": "You are being rate limited.", "retry_after": x, "global": g}`
  with `Retry-After`, `X-RateLimit-*` and a `Via` header: discord.py treats a 429 without
  `Via` as a Cloudflare ban and raises instead of retrying.
* Interaction callbacks are POSTed with `?with_response=1`; the fake then answers 200 with an
  `InteractionCallbackResponse` (`{"interaction": {...}, "resource": {"type", "message"}}`),
  otherwise 204. Follow-ups are POSTed with `?wait=1`.
* `GET /gateway/bot` (used by `AutoShardedClient` when no shard_count is given) returns the
  fake's websocket URL and `shard_count`; a plain `Client` goes straight to
  `DiscordWebSocket.DEFAULT_GATEWAY`, a `yarl.URL`.
* The gateway (`/gateway`) is connected with `?v=10&encoding=json&compress=zlib-stream`
  (`zstd-stream` when the `zstandard` package is importable). zlib-stream means one
  compressobj per connection; every frame is one message compressed and flushed with
  Z_SYNC_FLUSH (so it ends in 00 00 ff ff) and sent as a binary frame. Client frames are
  plain JSON text. The flow is HELLO (op 10) -> IDENTIFY (op 2, token, intents, optional
  `shard: [id, n]`) -> READY (guild stubs marked unavailable) -> one GUILD_CREATE per guild
  on that shard (`(guild_id >> 22) % n == id`). HEARTBEAT (op 1) is answered with op 11,
  RESUME (op 6) replays missed dispatches and sends RESUMED, REQUEST_GUILD_MEMBERS (op 8)
  answers GUILD_MEMBERS_CHUNK.
* INTERACTION_CREATE carries `attachment_size_limit` (discord.py reads it without a
  default; it becomes `Interaction.filesize_limit`), `member.permissions` (becomes
  `Interaction.permissions`), `app_permissions`, `channel`, `version: 1`, and `data.guild_id`
  only when the command is a guild command (that is how the CommandTree finds it).
  `context` is 0 in a server, 1 in a DM with the bot, 2 in a group DM (`group_dm_channel`);
  `authorizing_integration_owners` names the installs it came through ("0": the server's,
  "1": the person's own, `install_for_user`). A command is only dispatched where Discord
  would offer it: its `contexts`, its `integration_types`, and in a server its
  `default_member_permissions` (unless an admin's override, `permit_command`).

Driver methods are synchronous and must be called from the event loop that runs the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dtm
import fnmatch
import hashlib
import io
import json
import math
import mimetypes
import re
import secrets
import socket
import time
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

JSONDict = dict[str, Any]

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024
UPLOAD_LIMITS: dict[int, int] = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
DM_UPLOAD_LIMIT = 10 * MIB

DEFAULT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkEd.fake-discord-bot-token"
DEFAULT_APP_ID = 1_100_000_000_000_000_001

# Permission bits, as Discord puts them in `member.permissions` and `default_member_permissions`.
PERM_CREATE_INSTANT_INVITE = 1 << 0
PERM_ADMINISTRATOR = 1 << 3
PERM_MANAGE_CHANNELS = 1 << 4
PERM_MANAGE_GUILD = 1 << 5
PERM_ADD_REACTIONS = 1 << 6
PERM_VIEW_CHANNEL = 1 << 10
PERM_SEND_MESSAGES = 1 << 11
PERM_MANAGE_MESSAGES = 1 << 13
PERM_EMBED_LINKS = 1 << 14
PERM_ATTACH_FILES = 1 << 15
PERM_READ_MESSAGE_HISTORY = 1 << 16
PERM_USE_APPLICATION_COMMANDS = 1 << 31
PERM_USE_EXTERNAL_APPS = 1 << 50
ALL_PERMISSIONS = (1 << 53) - 1
DEFAULT_MEMBER_PERMISSIONS = (
    PERM_CREATE_INSTANT_INVITE | PERM_ADD_REACTIONS | PERM_VIEW_CHANNEL | PERM_SEND_MESSAGES | PERM_EMBED_LINKS
    | PERM_ATTACH_FILES | PERM_READ_MESSAGE_HISTORY | PERM_USE_APPLICATION_COMMANDS | PERM_USE_EXTERNAL_APPS
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | PERM_MANAGE_MESSAGES

# Gateway intents the fake looks at.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

# Interaction types, interaction callback types, message flags.
INTERACTION_PING, INTERACTION_COMMAND, INTERACTION_COMPONENT = 1, 2, 3
INTERACTION_AUTOCOMPLETE, INTERACTION_MODAL = 4, 5
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE = 4, 5, 6, 7
CALLBACK_AUTOCOMPLETE, CALLBACK_MODAL = 8, 9
_VALID_CALLBACKS: dict[int, set[int]] = {
    INTERACTION_PING: {1},
    INTERACTION_COMMAND: {CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_MODAL},
    INTERACTION_COMPONENT: {CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE,
                            CALLBACK_UPDATE, CALLBACK_MODAL},
    INTERACTION_AUTOCOMPLETE: {CALLBACK_AUTOCOMPLETE},
    INTERACTION_MODAL: {CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE},
}
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15
_SENDABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_EPHEMERAL | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2

_OPTION_SUBCOMMAND, _OPTION_GROUP, _OPTION_USER, _OPTION_CHANNEL, _OPTION_ATTACHMENT = 1, 2, 6, 7, 11
_CHAT_INPUT_NAME_RE = re.compile(r"^[-_\w]{1,32}$")
_MAX_CONTENT = 2000


class DiscordError(Exception):
    """An error the fake answers in Discord's JSON envelope."""

    def __init__(
        self, status: int, code: int, message: str, errors: JSONDict | None = None,
        headers: dict[str, str] | None = None, body: JSONDict | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.body = body

    def response(self) -> web.Response:
        body = self.body if self.body is not None else {"message": self.message, "code": self.code}
        if self.errors is not None:
            body = {**body, "errors": self.errors}
        return _json(body, status=self.status, headers=self.headers)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly `application/json`, as Discord sends it:
    discord.py's `json_or_text` compares the header verbatim and would treat
    `application/json; charset=utf-8` (aiohttp's `json_response`) as text."""
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


def _form_error(path: str, code: str, message: str) -> DiscordError:
    """400 / 50035 with Discord's nested `errors` object; `path` is dotted, e.g. `0.options.1.name`."""
    errors: JSONDict = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        errors = {key: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors=errors)


_UNKNOWN_INTERACTION = (404, 10062, "Unknown interaction")
_ALREADY_ACKED = (400, 40060, "Interaction has already been acknowledged.")
_INVALID_WEBHOOK_TOKEN = (401, 50027, "Invalid Webhook Token")
_UNKNOWN_WEBHOOK = (404, 10015, "Unknown Webhook")
_UNKNOWN_MESSAGE = (404, 10008, "Unknown Message")
_UNKNOWN_CHANNEL = (404, 10003, "Unknown Channel")
_TOO_LARGE = (413, 40005, "Request entity too large")
_EMPTY_MESSAGE = (400, 50006, "Cannot send an empty message")


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _err(spec: tuple[int, int, str]) -> DiscordError:
    return DiscordError(*spec)


@dataclass
class StoredFile:
    """Bytes the fake serves from loopback: user uploads, bot uploads and embed media."""

    id: int
    data: bytes
    filename: str
    content_type: str | None
    url: str
    width: int | None = None
    height: int | None = None


@dataclass
class _Link:
    """A URL that misbehaves as hostile links do: a redirect, or a long chunked body."""

    location: str | None = None
    status: int = 302
    chunk: bytes = b""
    count: int = 0
    delay_s: float = 0.0
    content_type: str = "image/gif"


@dataclass
class _Upload:
    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class _MessageRecord:
    payload: JSONDict
    source: str  # "user" | "channel" | "interaction" | "followup"
    history: list[JSONDict] = field(default_factory=list)
    interaction_id: int | None = None
    deleted: bool = False


@dataclass
class _Interaction:
    id: int
    token: str
    kind: int
    payload: JSONDict
    guild_id: int | None
    channel_id: int
    upload_limit: int
    shard: tuple[int, int]
    dispatched_at: float
    token_expires_at: float
    callbacks: list[JSONDict] = field(default_factory=list)
    acked: bool = False
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    choices: list[JSONDict] | None = None
    modal: JSONDict | None = None


@dataclass
class _Fail:
    method: str
    pattern: str
    make_error: Callable[[], DiscordError]


class _Session:
    """A gateway session: survives its connection so RESUME can replay what was missed."""

    def __init__(self, session_id: str, shard: tuple[int, int], intents: int) -> None:
        self.session_id = session_id
        self.shard = shard
        self.intents = intents
        self.seq = 0
        self.sent: list[JSONDict] = []
        self.conn: _Connection | None = None
        self.dead = False
        self.guild_ids: set[int] = set()

    def covers(self, guild_id: int | None) -> bool:
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.ws = ws
        self.query = query
        self.compress = query.get("compress")
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.session: _Session | None = None
        self.heartbeats = 0
        self.closed = False
        self.close_code: int | None = None
        self._encoder = self._make_encoder(self.compress)

    @staticmethod
    def _make_encoder(compress: str | None) -> Callable[[bytes], bytes] | None:
        if compress == "zlib-stream":
            deflate = zlib.compressobj()
            return lambda raw: deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
        if compress == "zstd-stream":
            try:
                import zstandard  # type: ignore[import-not-found]
            except ImportError:
                from compression import zstd  # type: ignore[import-not-found]

                zc = zstd.ZstdCompressor()
                return lambda raw: zc.compress(raw, mode=zstd.ZstdCompressor.FLUSH_BLOCK)
            zobj = zstandard.ZstdCompressor().compressobj()
            return lambda raw: zobj.compress(raw) + zobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return None

    @property
    def shard_id(self) -> int | None:
        return self.session.shard[0] if self.session else None

    def send(self, payload: JSONDict) -> None:
        if not self.closed:
            self.outbox.put_nowait(payload)

    def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.outbox.put_nowait(("close", code, reason))

    async def writer(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is None:
                return
            try:
                if isinstance(item, tuple):
                    self.closed = True
                    await self.ws.close(code=item[1], message=item[2].encode())
                    return
                raw = json.dumps(item, separators=(",", ":")).encode()
                if self._encoder is not None:
                    await self.ws.send_bytes(self._encoder(raw))
                else:
                    await self.ws.send_str(raw.decode())
            except (ConnectionError, RuntimeError):
                self.closed = True
                return


def _now_iso() -> str:
    return dtm.datetime.now(dtm.UTC).isoformat()


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None, None


def _as_id(value: Any, what: str = "id") -> int:
    """An id from a payload dict (`id` key), an object with `.id` (discord.py models), or an int/str."""
    if isinstance(value, dict):
        value = value.get("id")
    elif hasattr(value, "id") and not isinstance(value, (int, str)):
        value = value.id
    if value is None:
        raise ValueError(f"no {what} given")
    return int(value)


def _served_name(filename: str) -> str:
    """A file's name in its URL: `unknown` for names a URL cannot end in (`.`, `..`), as
    Discord renames such files; the name itself otherwise."""
    return filename if filename.strip(".") else "unknown"


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class FakeDiscord:
    """An aiohttp server speaking Discord's REST API v10 and gateway on 127.0.0.1:<free port>.

    Public read-back attributes: `requests` (every REST call with method, path, query, status,
    error code, encoding, JSON body and upload sizes; every file download, `kind: "file"`, with
    `sent`: the body bytes written before it ended or the client hung up), `unknown_routes` (calls to routes the fake
    does not know, answered 404/405), `errors` (exceptions inside the fake, answered 500),
    `identifies` (IDENTIFY payloads minus the token), `gateway_events` (every dispatch with its
    shard), `command_creates` (commands Discord created anew: a name+type new to its scope),
    `command_syncs` (bulk overwrites), `presence_updates`.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        app_id: int = DEFAULT_APP_ID,
        *,
        bot_name: str = "memeswap",
        shard_count: int = 1,
        heartbeat_interval_ms: int = 41250,
        ack_deadline_s: float = 3.0,
        token_ttl_s: float = 900.0,
        application_flags: int = 0,
        owner_id: int | None = None,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be >= 1")
        self.token = token
        self.app_id = app_id
        self.bot_id = app_id
        self.bot_name = bot_name
        self.shard_count = shard_count
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ack_deadline_s = ack_deadline_s
        self.token_ttl_s = token_ttl_s
        self.application_flags = application_flags
        self.requests: list[JSONDict] = []
        self.unknown_routes: list[JSONDict] = []
        self.errors: list[BaseException] = []
        self.identifies: list[JSONDict] = []
        self.gateway_events: list[JSONDict] = []
        self.presence_updates: list[JSONDict] = []
        self.command_creates = 0
        self.command_syncs = 0
        self._users: dict[int, JSONDict] = {}
        self._guilds: dict[int, JSONDict] = {}
        self._channels: dict[int, JSONDict] = {}
        self._messages: dict[int, _MessageRecord] = {}
        self._message_order: list[int] = []
        self._files: dict[int, StoredFile] = {}
        self._links: dict[int, _Link] = {}
        self._commands: dict[int | None, dict[tuple[str, int], JSONDict]] = {}
        self._user_installs: set[int] = set()
        self._command_overrides: set[tuple[int, str, int]] = set()
        self._interactions: dict[int, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._connections: list[_Connection] = []
        self._connection_log: list[_Connection] = []
        self._failures: list[_Fail] = []
        self._last_snowflake = 0
        self._started_at = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any], bool]] = []
        self._add_routes()
        self.owner_id = app_id + 1 if owner_id is None else owner_id
        self.user(self.bot_id, bot_name, bot=True)
        self.user(self.owner_id, "appowner")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Binds a free loopback port and starts serving."""
        app = web.Application(client_max_size=256 * MIB)
        app.router.add_route("GET", "/gateway", self._handle_gateway)
        app.router.add_route("GET", "/gateway/", self._handle_gateway)
        app.router.add_route("*", f"/api/v{API_VERSION}/{{tail:.*}}", self._handle_api)
        app.router.add_route("GET", "/attachments/{channel}/{id}/{filename}", self._handle_file)
        app.router.add_route("GET", "/external/{id}/{filename}", self._handle_file)
        app.router.add_route("GET", "/links/{id}", self._handle_link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._started_at = time.monotonic()

    async def close(self) -> None:
        """Closes every gateway connection (code 1001) and stops the server."""
        for conn in list(self._connections):
            conn.close(1001, "server shutting down")
        if self._connections:
            with contextlib.suppress(AssertionError):
                await self.wait_for(lambda: not self._connections, timeout=2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def http_base(self) -> str:
        """`http://127.0.0.1:PORT`, where attachments and embed media are served."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """The value for `discord.http.Route.BASE`."""
        return f"{self.http_base}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """The websocket URL (served by `/gateway`, `/gateway/bot` and as `resume_gateway_url`)."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    @contextlib.contextmanager
    def patch_client(self) -> Iterator[None]:
        """Points discord.py at the fake (`Route.BASE`, `DiscordWebSocket.DEFAULT_GATEWAY`); restores on exit."""
        import discord.gateway
        import discord.http
        import yarl

        old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def running(self, bot: Any, token: str | None = None, ready_timeout: float = 10.0) -> AsyncIterator[Any]:
        """Patches discord.py, runs `bot.start(token)` until `wait_until_ready()`; closes the bot on exit."""
        with self.patch_client():
            task = asyncio.create_task(bot.start(token or self.token), name="fake-discord-bot")
            ready = asyncio.create_task(bot.wait_until_ready())
            try:
                done, _ = await asyncio.wait({task, ready}, timeout=ready_timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if task in done:
                    task.result()
                    raise RuntimeError("bot.start() returned before the bot was ready")
                if ready not in done:
                    raise TimeoutError(f"bot not ready within {ready_timeout}s")
                yield bot
            finally:
                ready.cancel()
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.gather(task, ready, return_exceptions=True), timeout=10)

    # ------------------------------------------------------------------ ids and sharding

    def snowflake(self) -> int:
        """A fresh, increasing snowflake whose timestamp is now."""
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = max(value, self._last_snowflake + 1)
        self._last_snowflake = value
        return value

    @staticmethod
    def shard_for_guild(guild_id: int, shard_count: int) -> int:
        """Discord's sharding formula."""
        return (guild_id >> 22) % shard_count

    @staticmethod
    def guild_id_on_shard(shard_id: int, shard_count: int, index: int = 1) -> int:
        """A guild id that lands on `shard_id` of `shard_count` (distinct per `index` >= 1)."""
        return ((index * shard_count + shard_id) << 22) | index

    # ------------------------------------------------------------------ world setup (users' side)

    def user(self, user_id: int, name: str = "alice", *, locale: str = "en-US", bot: bool = False) -> JSONDict:
        """A User object, registered with the fake."""
        user: JSONDict = {
            "id": str(user_id), "username": name, "discriminator": "0", "global_name": None if bot else name.title(),
            "avatar": None, "banner": None, "accent_color": None, "avatar_decoration_data": None, "collectibles": None,
            "primary_guild": None, "public_flags": 0, "flags": 0, "bot": bot, "system": False,
        }
        self._users[user_id] = {"payload": user, "locale": locale}
        return copy.deepcopy(user)

    def guild(
        self, guild_id: int, name: str = "Guild", premium_tier: int = 0, owner_id: int | None = None, *,
        features: list[str] | None = None, locale: str = "en-US", everyone_permissions: int = 0,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> JSONDict:
        """A guild the bot is in; dispatched as GUILD_CREATE now if its shard is connected. Returns GUILD_CREATE."""
        if premium_tier not in UPLOAD_LIMITS:
            raise ValueError("premium_tier must be 0, 1, 2 or 3")
        if owner_id is None:
            owner_id = (1 << 32) + guild_id
        if owner_id not in self._users:
            self.user(owner_id, f"owner{guild_id % 10000}")
        bot_role_id = self.snowflake()
        self._guilds[guild_id] = {
            "id": guild_id, "name": name, "premium_tier": premium_tier, "owner_id": owner_id,
            "features": list(features or []), "locale": locale, "bot_permissions": bot_permissions,
            "joined_at": _now_iso(), "channels": [],
            "roles": {
                guild_id: self._role(guild_id, "@everyone", everyone_permissions, 0),
                bot_role_id: self._role(bot_role_id, self.bot_name, bot_permissions, 1,
                                        tags={"bot_id": str(self.bot_id)}),
            },
            "members": {self.bot_id: {"permissions": bot_permissions, "roles": [bot_role_id], "joined_at": _now_iso()}},
        }
        for session in self._live_sessions(guild_id):
            session.guild_ids.add(guild_id)
            self._dispatch(session, "GUILD_CREATE", self._guild_create_payload(guild_id, session.intents))
        return self._guild_create_payload(guild_id, INTENT_GUILD_PRESENCES)

    def upload_limit(self, guild: JSONDict | int | None) -> int:
        """The upload limit in bytes: by premium tier in a guild, DM_UPLOAD_LIMIT without one."""
        if guild is None:
            return DM_UPLOAD_LIMIT
        return UPLOAD_LIMITS[self._guild(guild)["premium_tier"]]

    def text_channel(self, guild: JSONDict | int, channel_id: int, name: str = "general", *,
                     nsfw: bool = False) -> JSONDict:
        """A text channel (type 0); dispatched as CHANNEL_CREATE if the guild was already delivered."""
        g = self._guild(guild)
        channel: JSONDict = {
            "id": str(channel_id), "type": 0, "guild_id": str(g["id"]), "name": name, "position": len(g["channels"]),
            "permission_overwrites": [], "parent_id": None, "topic": None, "nsfw": nsfw, "rate_limit_per_user": 0,
            "last_message_id": None, "flags": 0,
        }
        self._channels[channel_id] = channel
        g["channels"].append(channel_id)
        self._dispatch_to_guild(g["id"], "CHANNEL_CREATE", channel)
        return copy.deepcopy(channel)

    def dm_channel(self, user: JSONDict | int) -> JSONDict:
        """The DM channel (type 1) between `user` and the bot."""
        user_id = _as_id(user, "user")
        for channel in self._channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id):
                return copy.deepcopy(channel)
        channel_id = self.snowflake()
        channel = {"id": str(channel_id), "type": 1, "last_message_id": None, "flags": 0,
                   "recipients": [self._user_payload(user_id)]}
        self._channels[channel_id] = channel
        return copy.deepcopy(channel)

    def group_dm_channel(self, users: list[JSONDict | int], name: str | None = None) -> JSONDict:
        """A group DM (type 3) between people, without the bot: the app reaches it only through
        a person's own install ("user-installable app"), and the bot cannot read or post there."""
        recipients = [self._user_payload(_as_id(u, "user")) for u in users]
        channel_id = self.snowflake()
        channel = {"id": str(channel_id), "type": 3, "name": name, "icon": None, "last_message_id": None,
                   "flags": 0, "owner_id": recipients[0]["id"], "recipients": recipients}
        self._channels[channel_id] = channel
        return copy.deepcopy(channel)

    def install_for_user(self, user: JSONDict | int) -> None:
        """`user` authorizes the app for themselves (a user install, integration type 1): its
        commands that allow user installs then work for them in any context they allow."""
        self._user_installs.add(_as_id(user, "user"))

    def permit_command(self, guild: JSONDict | int, name: str, user: JSONDict | int) -> None:
        """A server admin's override (Server Settings → Integrations) letting `user` use the
        command `name` whatever its `default_member_permissions`."""
        cmd, _ = self._find_command(name, 1, guild)
        self._command_overrides.add((_as_id(guild, "guild"), cmd["id"], _as_id(user, "user")))

    def member(self, guild: JSONDict | int, user: JSONDict | int, permissions: int = DEFAULT_MEMBER_PERMISSIONS,
               *, nick: str | None = None) -> JSONDict:
        """Makes `user` a member whose permissions are `permissions` (OR'd with @everyone's; all for admins/owner).

        The member gets a role carrying `permissions`, so the gateway cache agrees with the interaction
        payloads. Returns the member object as interactions carry it (with `permissions`)."""
        g = self._guild(guild)
        user_id = _as_id(user, "user")
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}: create it with user() first")
        role_id = self.snowflake()
        role = self._role(role_id, f"perms-{user_id}", permissions, len(g["roles"]))
        g["roles"][role_id] = role
        g["members"][user_id] = {"permissions": permissions, "roles": [role_id], "joined_at": _now_iso(), "nick": nick}
        self._dispatch_to_guild(g["id"], "GUILD_ROLE_CREATE", {"guild_id": str(g["id"]), "role": role})
        member = self._member_payload(g["id"], user_id)
        for session in self._live_sessions(g["id"]):
            if session.intents & INTENT_GUILD_MEMBERS and g["id"] in session.guild_ids:
                self._dispatch(session, "GUILD_MEMBER_ADD", {**member, "guild_id": str(g["id"])})
        return self._member_payload(g["id"], user_id, with_permissions=True)

    def attachment(self, channel_id: int, data: bytes, filename: str, content_type: str | None = None,
                   *, description: str | None = None) -> JSONDict:
        """Stores bytes a user uploaded; returns the attachment object (url/proxy_url served from loopback)."""
        return self._attachment_payload(self._store(data, filename, content_type, f"attachments/{channel_id}"),
                                        description=description)

    def media_embed(self, data: bytes, filename: str, kind: str = "gifv", content_type: str | None = None,
                    *, width: int | None = None, height: int | None = None, title: str | None = None) -> JSONDict:
        """An embed as Discord unfurls a media link (`gifv`, `image` or `video`); the media is served from loopback."""
        if kind not in ("gifv", "image", "video"):
            raise ValueError("kind must be gifv, image or video")
        stored = self._store(data, filename, content_type, "external")
        media = {"url": stored.url, "proxy_url": stored.url, "width": width or stored.width or 0,
                 "height": height or stored.height or 0, "content_type": stored.content_type, "flags": 0}
        embed: JSONDict = {"type": kind, "url": stored.url, "thumbnail": dict(media),
                           "provider": {"name": "Fake Media", "url": self.http_base}}
        if kind in ("gifv", "video"):
            embed["video"] = dict(media)
        if title:
            embed["title"] = title
        return embed

    def link_embed(self, url: str, kind: str = "gifv", proxy_url: str | None = None) -> JSONDict:
        """An embed of a link to any URL (a user's own, or one of `redirect`/`streamed`), its
        media at `url` and, like Discord's media proxy, `proxy_url` (default: the same URL)."""
        media = {"url": url, "proxy_url": proxy_url or url, "width": 64, "height": 64, "flags": 0}
        embed: JSONDict = {"type": kind, "url": url, "thumbnail": dict(media)}
        if kind in ("gifv", "video"):
            embed["video"] = dict(media)
        return embed

    def redirect(self, location: str, status: int = 302) -> str:
        """A URL on the fake that answers `status` with `Location: location`."""
        return self._link(_Link(location=location, status=status))

    def streamed(self, chunk: bytes, count: int, delay_s: float = 0.0, content_type: str = "image/gif") -> str:
        """A URL whose body is `chunk` `count` times, sent chunked (no Content-Length) with
        `delay_s` between chunks, until the end or until the client hangs up."""
        return self._link(_Link(chunk=chunk, count=count, delay_s=delay_s, content_type=content_type))

    def _link(self, link: _Link) -> str:
        link_id = self.snowflake()
        self._links[link_id] = link
        return f"{self.http_base}/links/{link_id}"

    def message(self, channel: JSONDict | int, author: JSONDict | int, content: str = "",
                attachments: list[JSONDict] | tuple[JSONDict, ...] = (),
                embeds: list[JSONDict] | tuple[JSONDict, ...] = ()) -> JSONDict:
        """A message a user posted in `channel` (MESSAGE_CREATE goes to bots with the message intents)."""
        channel_id = _as_id(channel, "channel")
        ch = self._channel(channel_id)
        author_id = _as_id(author, "author")
        msg = self._new_message(ch, self._user_payload(author_id), content=content,
                                attachments=[copy.deepcopy(a) for a in attachments],
                                embeds=[copy.deepcopy(e) for e in embeds])
        if ch.get("guild_id") and author_id in self._guild(int(ch["guild_id"]))["members"]:
            msg["member"] = self._member_payload(int(ch["guild_id"]), author_id, with_user=False)
        self._record_message(msg, "user")
        return copy.deepcopy(msg)

    # ------------------------------------------------------------------ interactions (users' side)

    def slash_command(
        self, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int, name: str,
        options: dict[str, Any] | list[JSONDict] | None = None, resolved_attachments: list[JSONDict] = (),
        *, locale: str | None = None,
    ) -> JSONDict:
        """Dispatches INTERACTION_CREATE type 2 for the synced chat-input command `name`.

        `name` may name a subcommand path ("face set", "admin faces purge"). `options` is a dict of
        leaf option name -> value (attachment options take an `attachment()` dict, user options a
        `user()` dict, channel options a channel dict) or a raw list of option objects.
        Returns the dispatched interaction."""
        parts = name.split()
        cmd, cmd_guild = self._find_command(parts[0], 1, guild)
        resolved: JSONDict = {}
        for att in resolved_attachments:
            resolved.setdefault("attachments", {})[str(att["id"])] = copy.deepcopy(att)
        data: JSONDict = {"id": cmd["id"], "name": cmd["name"], "type": 1,
                          "options": self._options_tree(cmd, parts[1:], options or {}, None, resolved, guild)}
        if resolved:
            data["resolved"] = resolved
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        return self._deliver(INTERACTION_COMMAND, guild, channel, user, data, locale, command=cmd)

    def autocomplete(
        self, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int, name: str,
        options: dict[str, Any] | list[JSONDict], focused: str | None = None, *, locale: str | None = None,
    ) -> JSONDict:
        """Dispatches INTERACTION_CREATE type 4 (autocomplete). `focused` names the option being typed
        (its value is the partial text); with a raw list, mark it `"focused": True` yourself."""
        parts = name.split()
        cmd, cmd_guild = self._find_command(parts[0], 1, guild)
        if focused is None and isinstance(options, dict):
            raise ValueError("name the focused option")
        data: JSONDict = {"id": cmd["id"], "name": cmd["name"], "type": 1,
                          "options": self._options_tree(cmd, parts[1:], options, focused, {}, guild)}
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        return self._deliver(INTERACTION_AUTOCOMPLETE, guild, channel, user, data, locale, command=cmd)

    def message_context_menu(self, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int,
                             command_name: str, target_message: JSONDict | int, *,
                             locale: str | None = None) -> JSONDict:
        """Dispatches a message command (type 2, data.type 3) on `target_message` (from `message()`)."""
        cmd, cmd_guild = self._find_command(command_name, 3, guild)
        target_id = _as_id(target_message, "message")
        record = self._messages.get(target_id)
        if record is None or record.deleted:
            raise KeyError(f"unknown message {target_id}: create it with message() first")
        data: JSONDict = {"id": cmd["id"], "name": cmd["name"], "type": 3, "target_id": str(target_id),
                          "resolved": {"messages": {str(target_id): copy.deepcopy(record.payload)}}}
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        return self._deliver(INTERACTION_COMMAND, guild, channel, user, data, locale, command=cmd)

    def user_context_menu(self, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int,
                          command_name: str, target_user: JSONDict | int, *, locale: str | None = None) -> JSONDict:
        """Dispatches a user command (type 2, data.type 2) on `target_user`."""
        cmd, cmd_guild = self._find_command(command_name, 2, guild)
        resolved: JSONDict = {}
        target_id = self._resolve_user(target_user, resolved, guild)
        data: JSONDict = {"id": cmd["id"], "name": cmd["name"], "type": 2, "target_id": target_id,
                          "resolved": resolved}
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        return self._deliver(INTERACTION_COMMAND, guild, channel, user, data, locale, command=cmd)

    def press_button(self, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int,
                     message: JSONDict | int, custom_id: str, *, component_type: int = 2,
                     values: list[str] | None = None, locale: str | None = None) -> JSONDict:
        """Dispatches a component interaction (type 3) on a message the bot sent (button, or select with values)."""
        message_id = _as_id(message, "message")
        record = self._messages.get(message_id)
        if record is None or record.deleted:
            raise KeyError(f"unknown message {message_id}")
        data: JSONDict = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return self._deliver(INTERACTION_COMPONENT, guild, channel, user, data, locale,
                             message=copy.deepcopy(record.payload))

    def request_reconnect(self, shard_id: int = 0) -> None:
        """Sends RECONNECT (op 7) on the shard's live connection; discord.py then RESUMEs."""
        for session in self._sessions.values():
            if not session.dead and session.conn is not None and session.shard[0] == shard_id:
                session.conn.send({"op": 7, "d": None})
                return
        raise RuntimeError(f"no live gateway connection for shard {shard_id}")

    # ------------------------------------------------------------------ read-back (what the bot did)

    def interaction(self, interaction: Any) -> JSONDict:
        """The dispatched INTERACTION_CREATE payload."""
        return copy.deepcopy(self._interaction(interaction).payload)

    def callbacks(self, interaction: Any) -> list[JSONDict]:
        """Every callback attempt: type, data, files (name -> bytes), latency_s, status and error code."""
        return copy.deepcopy(self._interaction(interaction).callbacks)

    def ack_latency(self, interaction: Any) -> float | None:
        """Seconds between dispatch and the accepted acknowledgement; None if never acknowledged."""
        return next((c["latency_s"] for c in self._interaction(interaction).callbacks if c["status"] < 300), None)

    def choices(self, interaction: Any) -> list[JSONDict] | None:
        """The autocomplete choices the bot answered (callback type 8), or None."""
        return copy.deepcopy(self._interaction(interaction).choices)

    def modal(self, interaction: Any) -> JSONDict | None:
        """The modal the bot opened (callback type 9), or None."""
        return copy.deepcopy(self._interaction(interaction).modal)

    def original_response(self, interaction: Any) -> JSONDict | None:
        """The current original response (attachments carry their bytes under `data`); None if none/deleted."""
        inter = self._interaction(interaction)
        record = self._messages.get(inter.original_id) if inter.original_id else None
        if record is None or record.deleted:
            return None
        return self._with_bytes(record.payload)

    def original_history(self, interaction: Any) -> list[JSONDict]:
        """Every version of the original response, oldest first (creation, then each edit)."""
        inter = self._interaction(interaction)
        record = self._messages.get(inter.original_id) if inter.original_id else None
        return [] if record is None else [self._with_bytes(v) for v in record.history]

    def followups(self, interaction: Any, include_deleted: bool = False) -> list[JSONDict]:
        """Follow-up messages (current versions, attachments with bytes), oldest first."""
        records = [self._messages[i] for i in self._interaction(interaction).followup_ids]
        return [self._with_bytes(r.payload) for r in records if include_deleted or not r.deleted]

    def channel_messages(self, channel_id: int, include_users: bool = False,
                         include_interactions: bool = False) -> list[JSONDict]:
        """Messages the bot posted with POST /channels/{id}/messages (attachments with bytes), oldest first.

        `include_users` adds messages users posted; `include_interactions` adds non-ephemeral interaction
        responses and follow-ups, which also show up in the channel on Discord."""
        sources = {"channel"} | ({"user"} if include_users else set())
        if include_interactions:
            sources |= {"interaction", "followup"}
        out = []
        for message_id in self._message_order:
            record = self._messages[message_id]
            if record.deleted or record.source not in sources or record.payload["channel_id"] != str(channel_id):
                continue
            if record.payload.get("flags", 0) & FLAG_EPHEMERAL:
                continue
            out.append(self._with_bytes(record.payload))
        return out

    def message_history(self, message_id: int | JSONDict) -> list[JSONDict]:
        """Every version of any message the fake holds, oldest first."""
        return [self._with_bytes(v) for v in self._messages[_as_id(message_id, "message")].history]

    def file_bytes(self, attachment: JSONDict | int | str) -> bytes:
        """The bytes behind an attachment object, attachment id or served URL."""
        if isinstance(attachment, str) and "/" in attachment:
            found = next((f for f in self._files.values() if f.url == attachment.split("?")[0]), None)
            if found is None:
                raise KeyError(attachment)
            return found.data
        return self._files[_as_id(attachment, "attachment")].data

    def synced_commands(self, guild: JSONDict | int | None = None) -> list[JSONDict]:
        """The application commands Discord holds: global ones, or a guild's."""
        key = None if guild is None else _as_id(guild, "guild")
        return copy.deepcopy(list(self._commands.get(key, {}).values()))

    def heartbeat_acks(self, shard_id: int | None = None) -> int:
        """Heartbeats answered with HEARTBEAT_ACK, over all connections (of one shard, if given)."""
        return sum(c.heartbeats for c in self._connection_log
                   if shard_id is None or c.shard_id == shard_id)

    @property
    def gateway_connections(self) -> list[JSONDict]:
        """Every gateway connection: query (v, encoding, compress), shard, heartbeats, open, close code."""
        return [{"query": dict(c.query), "shard": list(c.session.shard) if c.session else None,
                 "heartbeats": c.heartbeats, "open": c in self._connections, "close_code": c.close_code}
                for c in self._connection_log]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Polls `predicate` until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    async def wait_for_ack(self, interaction: Any, timeout: float = 10.0) -> JSONDict:
        """Waits for the accepted callback of `interaction` and returns it."""
        inter = self._interaction(interaction)
        await self.wait_for(lambda: inter.acked, timeout)
        return copy.deepcopy(next(c for c in inter.callbacks if c["status"] < 300))

    async def autocomplete_choices(self, interaction: Any, timeout: float = 10.0) -> list[JSONDict]:
        """Waits for the bot's autocomplete answer and returns its choices."""
        inter = self._interaction(interaction)
        await self.wait_for(lambda: inter.choices is not None, timeout)
        return copy.deepcopy(inter.choices or [])

    def fail_next(self, method: str, path_pattern: str, status: int = 429, retry_after: float = 0.2,
                  global_: bool = False, *, code: int = 0, message: str | None = None) -> None:
        """The next `method` request whose path (after /api/v10, no query) matches the shell-style
        `path_pattern` (e.g. "/webhooks/*") fails with `status`: a 429 in Discord's rate-limit form
        (body, Retry-After, X-RateLimit-*, Via), anything else as `{"code": code, "message": message}`."""
        def rate_limited() -> DiscordError:
            bucket = hashlib.sha1(f"{method} {path_pattern}".encode()).hexdigest()[:16]
            headers = {"Retry-After": str(max(1, math.ceil(retry_after))), "Via": "1.1 google",
                       "X-RateLimit-Scope": "global" if global_ else "user"}
            if global_:
                headers["X-RateLimit-Global"] = "true"
            else:
                headers.update({
                    "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Bucket": bucket,
                    "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                })
            body: JSONDict = {"message": message or "You are being rate limited.", "retry_after": retry_after,
                              "global": global_}
            if code:
                body["code"] = code
            return DiscordError(429, code, body["message"], headers=headers, body=body)

        def other() -> DiscordError:
            return DiscordError(status, code, message or f"{status}: {_REASONS.get(status, 'Error')}")

        self._failures.append(_Fail(method.upper(), path_pattern, rate_limited if status == 429 else other))

    # ------------------------------------------------------------------ HTTP plumbing

    def _add_routes(self) -> None:
        snow, tok = r"(\d+)", r"([^/]+)"
        table: list[tuple[str, str, Callable[..., Any], bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("GET", f"/users/{snow}", self._get_user, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", f"/applications/{snow}/commands", self._list_commands, True),
            ("PUT", f"/applications/{snow}/commands", self._bulk_commands, True),
            ("POST", f"/applications/{snow}/commands", self._upsert_command, True),
            ("GET", f"/applications/{snow}/commands/{snow}", self._get_command, True),
            ("DELETE", f"/applications/{snow}/commands/{snow}", self._delete_command, True),
            ("GET", f"/applications/{snow}/guilds/{snow}/commands", self._list_commands, True),
            ("PUT", f"/applications/{snow}/guilds/{snow}/commands", self._bulk_commands, True),
            ("POST", f"/applications/{snow}/guilds/{snow}/commands", self._upsert_command, True),
            ("GET", f"/applications/{snow}/guilds/{snow}/commands/{snow}", self._get_command, True),
            ("DELETE", f"/applications/{snow}/guilds/{snow}/commands/{snow}", self._delete_command, True),
            ("POST", f"/interactions/{snow}/{tok}/callback", self._interaction_callback, False),
            ("POST", f"/webhooks/{snow}/{tok}", self._execute_webhook, False),
            ("GET", f"/webhooks/{snow}/{tok}/messages/(@original|\\d+)", self._get_webhook_message, False),
            ("PATCH", f"/webhooks/{snow}/{tok}/messages/(@original|\\d+)", self._edit_webhook_message, False),
            ("DELETE", f"/webhooks/{snow}/{tok}/messages/(@original|\\d+)", self._delete_webhook_message, False),
            ("GET", f"/channels/{snow}", self._get_channel, True),
            ("POST", f"/channels/{snow}/messages", self._create_channel_message, True),
            ("GET", f"/channels/{snow}/messages/{snow}", self._get_channel_message, True),
            ("PATCH", f"/channels/{snow}/messages/{snow}", self._edit_channel_message, True),
            ("DELETE", f"/channels/{snow}/messages/{snow}", self._delete_channel_message, True),
            ("POST", f"/channels/{snow}/typing", self._typing, True),
            ("GET", f"/guilds/{snow}", self._get_guild, True),
        ]
        self._routes = [(m, re.compile(p + "$"), h, auth) for m, p, h, auth in table]

    async def _read_body(self, request: web.Request) -> tuple[Any, dict[int, _Upload], str]:
        if request.method in ("GET", "HEAD") or not request.can_read_body:
            return None, {}, "none"
        if request.content_type == "multipart/form-data":
            payload: Any = {}
            uploads: dict[int, _Upload] = {}
            try:
                async for part in await request.multipart():
                    name = part.name or ""
                    if name == "payload_json":
                        payload = json.loads(await part.text())
                    elif part.filename is not None or name.startswith("files["):
                        m = re.fullmatch(r"files\[(\d+)\]", name) or re.fullmatch(r"file(\d*)", name)
                        index = int(m.group(1) or 0) if m else len(uploads)
                        uploads[index] = _Upload(index, part.filename or name, bytes(await part.read()),
                                                 part.headers.get("Content-Type"))
                    elif isinstance(payload, dict):
                        payload[name] = await part.text()
            except ValueError:
                raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None
            except Exception as exc:
                raise DiscordError(400, 0, f"400: Bad Request ({exc})") from None
            return payload, uploads, "multipart"
        raw = await request.read()
        if not raw:
            return None, {}, "none"
        try:
            return json.loads(raw), {}, "json"
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise DiscordError(401, 0, "401: Unauthorized")

    def _take_failure(self, method: str, path: str) -> DiscordError | None:
        for fail in self._failures:
            if fail.method == method and fnmatch.fnmatchcase(path, fail.pattern):
                self._failures.remove(fail)
                return fail.make_error()
        return None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        entry: JSONDict = {"method": request.method, "path": path, "query": dict(request.query), "status": 200,
                           "code": None, "t": round(time.monotonic() - self._started_at, 4)}
        self.requests.append(entry)
        try:
            body, uploads, encoding = await self._read_body(request)
            entry.update(encoding=encoding, json=copy.deepcopy(body),
                         files=[{"index": u.index, "filename": u.filename, "size": len(u.data)}
                                for u in uploads.values()])
            route = match = None
            path_known = False
            for method, pattern, handler, auth in self._routes:
                m = pattern.match(path)
                if m is None:
                    continue
                path_known = True
                if method == request.method:
                    route, match = (handler, auth), m
                    break
            if route is None:
                self.unknown_routes.append({"method": request.method, "path": path})
                if path_known:
                    raise DiscordError(405, 0, "405: Method Not Allowed")
                raise DiscordError(404, 0, "404: Not Found")
            handler, auth = route
            if auth:
                self._check_auth(request)
            failure = self._take_failure(request.method, path)
            if failure is not None:
                raise failure
            result = handler(match, body, uploads, request)
            if asyncio.iscoroutine(result):
                result = await result
            if result is None:
                entry["status"] = 204
                return web.Response(status=204)
            if isinstance(result, web.Response):
                entry["status"] = result.status
                return result
            return _json(result)
        except DiscordError as err:
            entry["status"], entry["code"] = err.status, err.code
            return err.response()
        except Exception as exc:  # a bug in the fake: keep serving, let the test see it
            self.errors.append(exc)
            entry["status"] = 500
            return _json({"message": "500: Internal Server Error", "code": 0}, status=500)

    def _download(self, request: web.Request) -> JSONDict:
        """A file download, recorded in `requests` beside the REST calls."""
        entry: JSONDict = {"method": request.method, "path": request.path, "query": dict(request.query),
                           "status": 200, "code": None, "t": round(time.monotonic() - self._started_at, 4),
                           "kind": "file", "encoding": "none", "json": None, "files": [], "sent": 0}
        self.requests.append(entry)
        return entry

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        entry = self._download(request)
        stored = self._files.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        if stored is None or _served_name(stored.filename) != request.match_info["filename"]:
            entry["status"] = 404
            return web.Response(status=404, text="Not Found")
        entry["sent"] = len(stored.data)
        return web.Response(body=stored.data, content_type=stored.content_type or "application/octet-stream")

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        entry = self._download(request)
        link = self._links.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        if link is None:
            entry["status"] = 404
            return web.Response(status=404, text="Not Found")
        if link.location is not None:
            entry["status"] = link.status
            return web.Response(status=link.status, headers={"Location": link.location})
        response = web.StreamResponse(headers={"Content-Type": link.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(link.count):
                await response.write(link.chunk)
                entry["sent"] += len(link.chunk)
                if link.delay_s:
                    await asyncio.sleep(link.delay_s)
            await response.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up: as it should, past its limit
            entry["status"] = 499
        return response

    # ------------------------------------------------------------------ REST: users, application, gateway

    def _get_me(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        return self._me_payload()

    def _me_payload(self) -> JSONDict:
        return self._user_payload(self.bot_id) | {"verified": True, "mfa_enabled": False, "email": None,
                                                  "locale": "en-US", "bio": ""}

    def _get_user(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        user_id = int(m.group(1))
        if user_id not in self._users:
            raise DiscordError(404, 10013, "Unknown User")
        return self._user_payload(user_id)

    def _create_dm(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        user_id = int((body or {}).get("recipient_id", 0))
        if user_id not in self._users:
            raise _form_error("recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        return self.dm_channel(user_id)

    def _get_application(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                         request: web.Request) -> JSONDict:
        owner = self._user_payload(self.owner_id)
        return {
            "id": str(self.app_id), "name": self.bot_name, "icon": None, "description": "", "summary": "",
            "type": None, "rpc_origins": [], "bot_public": True, "bot_require_code_grant": False,
            "bot": self._user_payload(self.bot_id), "owner": owner, "team": None,
            "verify_key": hashlib.sha256(str(self.app_id).encode()).hexdigest(), "flags": self.application_flags,
            "hook": True, "is_monetized": False, "interactions_endpoint_url": None, "redirect_uris": [], "tags": [],
            "approximate_guild_count": len(self._guilds), "integration_types_config": {"0": {}},
        }

    def _get_gateway(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        return {"url": self.gateway_url}

    def _get_gateway_bot(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                         request: web.Request) -> JSONDict:
        return {"url": self.gateway_url, "shards": self.shard_count,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                                        "max_concurrency": 1}}

    # ------------------------------------------------------------------ REST: application commands

    def _command_scope(self, m: re.Match[str]) -> int | None:
        if int(m.group(1)) != self.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "/guilds/" in m.re.pattern:
            guild_id = int(m.group(2))
            if guild_id not in self._guilds:
                raise DiscordError(403, 50001, "Missing Access")
            return guild_id
        return None

    def _list_commands(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                       request: web.Request) -> list[JSONDict]:
        return list(self._commands.get(self._command_scope(m), {}).values())

    def _get_command(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        scope = self._command_scope(m)
        command_id = m.group(m.lastindex or 0)
        found = next((c for c in self._commands.get(scope, {}).values() if c["id"] == command_id), None)
        if found is None:
            raise DiscordError(404, 10063, "Unknown application command")
        return found

    def _delete_command(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> None:
        found = self._get_command(m, body, uploads, request)
        scope = self._commands[self._command_scope(m)]
        del scope[(found["name"], found["type"])]

    def _bulk_commands(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                       request: web.Request) -> list[JSONDict]:
        scope_id = self._command_scope(m)
        if not isinstance(body, list):
            raise _form_error("_", "LIST_TYPE_CONVERT", "Must be a list.")
        for index, cmd in enumerate(body):
            self._validate_command(cmd, str(index))
        keys = [(c["name"], c.get("type", 1)) for c in body]
        for index, key in enumerate(keys):
            if keys.index(key) != index:
                raise _form_error(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME",
                                  f"Application command names must be unique: {key[0]}")
        old = self._commands.get(scope_id, {})
        self._commands[scope_id] = {key: self._store_command(cmd, old.get(key), scope_id)
                                    for key, cmd in zip(keys, body)}
        self.command_syncs += 1
        return list(self._commands[scope_id].values())

    def _upsert_command(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                        request: web.Request) -> web.Response:
        scope_id = self._command_scope(m)
        if not isinstance(body, dict):
            raise _form_error("_", "DICT_TYPE_CONVERT", "Must be an object.")
        self._validate_command(body, "")
        key = (body["name"], body.get("type", 1))
        scope = self._commands.setdefault(scope_id, {})
        existing = scope.get(key)
        scope[key] = self._store_command(body, existing, scope_id)
        return _json(scope[key], status=200 if existing else 201)

    def _store_command(self, cmd: JSONDict, existing: JSONDict | None, scope_id: int | None) -> JSONDict:
        ctype = cmd.get("type", 1)
        perms = cmd.get("default_member_permissions")
        stored: JSONDict = {
            "id": existing["id"] if existing else str(self.snowflake()),
            "application_id": str(self.app_id), "version": "", "type": ctype, "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations") or None,
            "description": cmd.get("description", "") if ctype == 1 else "",
            "description_localizations": cmd.get("description_localizations") or None,
            "default_member_permissions": None if perms is None else str(int(perms)),
            "dm_permission": cmd.get("dm_permission", True),
            "contexts": cmd.get("contexts"), "integration_types": cmd.get("integration_types") or [0],
            "nsfw": bool(cmd.get("nsfw", False)),
        }
        if ctype == 1 and cmd.get("options"):
            stored["options"] = [self._clean_option(o) for o in cmd["options"]]
        if scope_id is not None:
            stored["guild_id"] = str(scope_id)
        unchanged = existing is not None and {k: v for k, v in existing.items() if k != "version"} == {
            k: v for k, v in stored.items() if k != "version"}
        stored["version"] = existing["version"] if unchanged and existing else str(self.snowflake())
        if existing is None:
            self.command_creates += 1
        return stored

    def _clean_option(self, option: JSONDict) -> JSONDict:
        out = {k: copy.deepcopy(v) for k, v in option.items() if v is not None and k != "options"}
        if not out.get("required"):
            out.pop("required", None)
        if option.get("options"):
            out["options"] = [self._clean_option(o) for o in option["options"]]
        return out

    def _validate_command(self, cmd: Any, path: str) -> None:
        prefix = f"{path}." if path else ""
        if not isinstance(cmd, dict) or not isinstance(cmd.get("name"), str):
            raise _form_error(f"{prefix}name", "BASE_TYPE_REQUIRED", "This field is required")
        ctype = cmd.get("type", 1)
        if ctype not in (1, 2, 3, 4):
            raise _form_error(f"{prefix}type", "ENUM_TYPE_COERCE", f"Value \"{ctype}\" is not a valid enum value.")
        name = cmd["name"]
        if ctype == 1:
            if not _CHAT_INPUT_NAME_RE.match(name) or name != name.lower():
                raise _form_error(f"{prefix}name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            description = cmd.get("description") or ""
            if not 1 <= len(description) <= 100:
                raise _form_error(f"{prefix}description", "BASE_TYPE_BAD_LENGTH",
                                  "Must be between 1 and 100 in length.")
            self._validate_options(cmd.get("options") or [], f"{prefix}options")
        elif not 1 <= len(name) <= 32:
            raise _form_error(f"{prefix}name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        elif cmd.get("description"):
            raise _form_error(f"{prefix}description", "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                              "Context menu commands cannot have description")

    def _validate_options(self, options: list[JSONDict], path: str) -> None:
        if len(options) > 25:
            raise _form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        for index, opt in enumerate(options):
            where = f"{path}.{index}"
            name, otype = opt.get("name", ""), opt.get("type")
            if not _CHAT_INPUT_NAME_RE.match(name) or name != name.lower():
                raise _form_error(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if not 1 <= len(opt.get("description") or "") <= 100:
                raise _form_error(f"{where}.description", "BASE_TYPE_BAD_LENGTH",
                                  "Must be between 1 and 100 in length.")
            if otype not in range(1, 12):
                raise _form_error(f"{where}.type", "ENUM_TYPE_COERCE", f"Value \"{otype}\" is not a valid enum value.")
            if otype in (_OPTION_SUBCOMMAND, _OPTION_GROUP):
                self._validate_options(opt.get("options") or [], f"{where}.options")
                continue
            if len(opt.get("choices") or []) > 25:
                raise _form_error(f"{where}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            if opt.get("autocomplete") and opt.get("choices"):
                raise _form_error(f"{where}.autocomplete", "APPLICATION_COMMAND_OPTIONS_AUTOCOMPLETE_AND_CHOICES",
                                  "Autocomplete cannot be set for options that have choices")
            if opt.get("required") and seen_optional:
                raise _form_error(f"{where}.required", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                  "Required options must be placed before non-required options")
            seen_optional = seen_optional or not opt.get("required")

    # ------------------------------------------------------------------ REST: interactions and webhooks

    async def _interaction_callback(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                                    request: web.Request) -> Any:
        inter = self._interactions.get(int(m.group(1)))
        if inter is None or inter.token != m.group(2):
            raise _err(_UNKNOWN_INTERACTION)
        body = body if isinstance(body, dict) else {}
        latency = time.monotonic() - inter.dispatched_at
        attempt: JSONDict = {
            "type": body.get("type"), "data": copy.deepcopy(body.get("data")), "latency_s": latency,
            "files": {u.filename: u.data for u in uploads.values()}, "status": 200, "code": None,
            "with_response": _truthy(request.query.get("with_response")),
        }
        inter.callbacks.append(attempt)
        try:
            if inter.acked:
                raise _err(_ALREADY_ACKED)
            if latency > self.ack_deadline_s:
                raise _err(_UNKNOWN_INTERACTION)
            ctype = body.get("type")
            if ctype not in _VALID_CALLBACKS[inter.kind]:
                raise _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID",
                                  f"Interaction response type {ctype} is not valid for this interaction")
            self._check_upload_size(uploads, inter.upload_limit)
            message = self._apply_callback(inter, ctype, body.get("data") or {}, uploads)
        except DiscordError as err:
            attempt["status"], attempt["code"] = err.status, err.code
            raise
        inter.acked = True
        if not attempt["with_response"]:
            attempt["status"] = 204
            return None
        info: JSONDict = {"id": str(inter.id), "type": inter.kind}
        if message is not None:
            info.update(response_message_id=message["id"],
                        response_message_loading=bool(message.get("flags", 0) & FLAG_LOADING),
                        response_message_ephemeral=bool(message.get("flags", 0) & FLAG_EPHEMERAL))
        result: JSONDict = {"interaction": info}
        if message is not None and ctype in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_UPDATE):
            result["resource"] = {"type": ctype, "message": message}
        return result

    def _apply_callback(self, inter: _Interaction, ctype: int, data: JSONDict,
                        uploads: dict[int, _Upload]) -> JSONDict | None:
        """Performs an accepted callback; returns the message it created or changed, if any."""
        if ctype == CALLBACK_AUTOCOMPLETE:
            choices = data.get("choices")
            if not isinstance(choices, list):
                raise _form_error("data.choices", "BASE_TYPE_REQUIRED", "This field is required")
            if len(choices) > 25:
                raise _form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            for index, choice in enumerate(choices):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    raise _form_error(f"data.choices.{index}.name", "BASE_TYPE_BAD_LENGTH",
                                      "Must be between 1 and 100 in length.")
            inter.choices = copy.deepcopy(choices)
            return None
        if ctype == CALLBACK_MODAL:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise _form_error(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            inter.modal = copy.deepcopy(data)
            return None
        channel = self._channel(inter.channel_id)
        if ctype == CALLBACK_MESSAGE:
            msg = self._message_from_body(channel, data, uploads, inter, creating=True)
            self._record_message(msg, "interaction", inter.id)
            inter.original_id = int(msg["id"])
            return msg
        if ctype == CALLBACK_DEFERRED_MESSAGE:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            msg = self._new_message(channel, self._user_payload(self.bot_id), flags=flags,
                                    **self._interaction_message_fields(inter))
            self._record_message(msg, "interaction", inter.id)
            inter.original_id = int(msg["id"])
            return msg
        if ctype == CALLBACK_DEFERRED_UPDATE:
            return None
        record = self._messages.get(inter.original_id or 0)
        if record is None:
            raise _err(_UNKNOWN_MESSAGE)
        return self._edit_record(record, data, uploads)

    def _webhook_interaction(self, m: re.Match[str]) -> _Interaction:
        if int(m.group(1)) != self.app_id:
            raise _err(_UNKNOWN_WEBHOOK)
        inter = self._by_token.get(m.group(2))
        if inter is None or time.monotonic() > inter.token_expires_at:
            raise _err(_INVALID_WEBHOOK_TOKEN)
        if not inter.acked:
            raise _err(_UNKNOWN_WEBHOOK)
        return inter

    def _webhook_record(self, inter: _Interaction, which: str) -> _MessageRecord:
        message_id = inter.original_id if which == "@original" else int(which)
        if message_id is None or (message_id != inter.original_id and message_id not in inter.followup_ids):
            raise _err(_UNKNOWN_MESSAGE)
        record = self._messages[message_id]
        if record.deleted:
            raise _err(_UNKNOWN_MESSAGE)
        return record

    def _execute_webhook(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                         request: web.Request) -> JSONDict | None:
        inter = self._webhook_interaction(m)
        self._check_upload_size(uploads, inter.upload_limit)
        msg = self._message_from_body(self._channel(inter.channel_id), body if isinstance(body, dict) else {},
                                      uploads, inter, creating=True, followup=True)
        self._record_message(msg, "followup", inter.id)
        inter.followup_ids.append(int(msg["id"]))
        return msg if _truthy(request.query.get("wait")) else None

    def _get_webhook_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                             request: web.Request) -> JSONDict:
        return self._webhook_record(self._webhook_interaction(m), m.group(3)).payload

    def _edit_webhook_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                              request: web.Request) -> JSONDict:
        inter = self._webhook_interaction(m)
        record = self._webhook_record(inter, m.group(3))
        self._check_upload_size(uploads, inter.upload_limit)
        return self._edit_record(record, body if isinstance(body, dict) else {}, uploads)

    def _delete_webhook_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                                request: web.Request) -> None:
        record = self._webhook_record(self._webhook_interaction(m), m.group(3))
        self._delete_record(record)

    # ------------------------------------------------------------------ REST: channels and guilds

    def _get_channel(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        return self._bot_channel(int(m.group(1)))

    def _bot_channel(self, channel_id: int) -> JSONDict:
        """A channel the bot itself may read and post in: not a group DM of people (type 3)."""
        channel = self._channel(channel_id)
        if channel["type"] == 3:
            raise DiscordError(403, 50001, "Missing Access")
        return channel

    def _get_guild(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> JSONDict:
        guild_id = int(m.group(1))
        if guild_id not in self._guilds:
            raise DiscordError(404, 10004, "Unknown Guild")
        payload = self._guild_create_payload(guild_id, 0)
        for key in ("channels", "members", "threads", "voice_states", "presences", "joined_at", "member_count"):
            payload.pop(key, None)
        return payload

    def _create_channel_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                                request: web.Request) -> JSONDict:
        channel = self._bot_channel(int(m.group(1)))
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        self._check_upload_size(uploads, self.upload_limit(guild_id))
        msg = self._message_from_body(channel, body if isinstance(body, dict) else {}, uploads, None, creating=True)
        self._record_message(msg, "channel")
        return msg

    def _channel_record(self, m: re.Match[str]) -> _MessageRecord:
        self._channel(int(m.group(1)))
        record = self._messages.get(int(m.group(2)))
        if record is None or record.deleted or record.payload["channel_id"] != m.group(1):
            raise _err(_UNKNOWN_MESSAGE)
        if record.payload.get("flags", 0) & FLAG_EPHEMERAL:
            raise _err(_UNKNOWN_MESSAGE)
        return record

    def _get_channel_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                             request: web.Request) -> JSONDict:
        return self._channel_record(m).payload

    def _edit_channel_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                              request: web.Request) -> JSONDict:
        record = self._channel_record(m)
        if record.payload["author"]["id"] != str(self.bot_id):
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        channel = self._channel(int(m.group(1)))
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        self._check_upload_size(uploads, self.upload_limit(guild_id))
        return self._edit_record(record, body if isinstance(body, dict) else {}, uploads)

    def _delete_channel_message(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload],
                                request: web.Request) -> None:
        self._delete_record(self._channel_record(m))

    def _typing(self, m: re.Match[str], body: Any, uploads: dict[int, _Upload], request: web.Request) -> None:
        self._channel(int(m.group(1)))
        return None

    # ------------------------------------------------------------------ messages

    def _check_upload_size(self, uploads: dict[int, _Upload], limit: int) -> None:
        if sum(len(u.data) for u in uploads.values()) > limit:
            raise _err(_TOO_LARGE)

    def _interaction_message_fields(self, inter: _Interaction) -> JSONDict:
        user = inter.payload.get("member", {}).get("user") or inter.payload.get("user")
        data = inter.payload.get("data") or {}
        kind = 20 if inter.kind == INTERACTION_COMMAND and data.get("type", 1) == 1 else (
            23 if inter.kind == INTERACTION_COMMAND else 0)
        metadata: JSONDict = {"id": str(inter.id), "type": inter.kind, "user": user,
                              "authorizing_integration_owners": inter.payload["authorizing_integration_owners"]}
        if inter.kind == INTERACTION_COMMAND:
            metadata["name"] = data.get("name")
            metadata["command_type"] = data.get("type", 1)
        return {"type": kind, "webhook_id": str(self.app_id), "application_id": str(self.app_id),
                "interaction_metadata": metadata}

    def _new_message(self, channel: JSONDict, author: JSONDict, *, content: str = "", flags: int = 0,
                     attachments: list[JSONDict] | None = None, embeds: list[JSONDict] | None = None,
                     **extra: Any) -> JSONDict:
        msg: JSONDict = {
            "id": str(self.snowflake()), "channel_id": channel["id"], "author": author, "content": content,
            "timestamp": _now_iso(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [], "mention_roles": [], "attachments": attachments or [], "embeds": embeds or [],
            "pinned": False, "type": 0, "flags": flags, "components": [],
        }
        if channel.get("guild_id"):
            msg["guild_id"] = channel["guild_id"]
        msg.update(extra)
        return msg

    def _message_from_body(self, channel: JSONDict, body: JSONDict, uploads: dict[int, _Upload],
                           inter: _Interaction | None, *, creating: bool, followup: bool = False) -> JSONDict:
        fields = self._validated_fields(body)
        attachments = self._attachments_for(body, uploads, channel, existing=[],
                                            ephemeral=bool(fields.get("flags", 0) & FLAG_EPHEMERAL))
        extra: JSONDict = {}
        if inter is not None:
            extra = self._interaction_message_fields(inter)
            if followup:
                extra["type"] = 0
        if body.get("message_reference"):
            extra["type"] = 19
            extra["message_reference"] = body["message_reference"]
        msg = self._new_message(channel, self._user_payload(self.bot_id), content=fields.get("content") or "",
                                flags=fields.get("flags", 0), attachments=attachments,
                                embeds=fields.get("embeds") or [], **extra)
        msg["components"] = fields.get("components") or []
        msg["tts"] = bool(body.get("tts", False))
        if creating and not (msg["content"] or msg["embeds"] or msg["attachments"] or msg["components"]
                             or body.get("sticker_ids") or body.get("poll")):
            raise _err(_EMPTY_MESSAGE)
        return msg

    @staticmethod
    def _validated_fields(body: JSONDict) -> JSONDict:
        out: JSONDict = {}
        if "content" in body:
            content = body["content"] or ""
            if len(content) > _MAX_CONTENT:
                raise _form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {_MAX_CONTENT} or fewer in length.")
            out["content"] = content
        if "embeds" in body:
            embeds = body["embeds"] or []
            if len(embeds) > 10:
                raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            out["embeds"] = [{"type": "rich", **e} for e in embeds]
        if "components" in body:
            out["components"] = body["components"] or []
        if "flags" in body and body["flags"] is not None:
            out["flags"] = int(body["flags"]) & _SENDABLE_FLAGS
        return out

    def _attachments_for(self, body: JSONDict, uploads: dict[int, _Upload], channel: JSONDict,
                         existing: list[JSONDict], ephemeral: bool) -> list[JSONDict]:
        """The attachment list after a create/edit: `attachments` entries keep existing ones (by id)
        or name an upload (`id` == n of `files[n]`); without `attachments`, uploads are appended."""
        def new(upload: _Upload, entry: JSONDict) -> JSONDict:
            stored = self._store(upload.data, entry.get("filename") or upload.filename, None,
                                 f"attachments/{channel['id']}")
            return self._attachment_payload(stored, description=entry.get("description"), ephemeral=ephemeral)

        if "attachments" not in body or body["attachments"] is None:
            return existing + [new(u, {}) for _, u in sorted(uploads.items())]
        by_id = {a["id"]: a for a in existing}
        out = []
        used: set[int] = set()
        for index, entry in enumerate(body["attachments"]):
            ref = str(entry.get("id"))
            if ref in by_id:
                out.append(copy.deepcopy(by_id[ref]))
            elif ref.isdigit() and int(ref) in uploads and int(ref) not in used:
                used.add(int(ref))
                out.append(new(uploads[int(ref)], entry))
            else:
                raise _form_error(f"attachments.{index}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment")
        return out

    def _edit_record(self, record: _MessageRecord, body: JSONDict, uploads: dict[int, _Upload]) -> JSONDict:
        msg = copy.deepcopy(record.payload)
        fields = self._validated_fields(body)
        for key in ("content", "embeds", "components"):
            if key in fields:
                msg[key] = fields[key]
        was_loading = bool(msg.get("flags", 0) & FLAG_LOADING)
        flags = msg.get("flags", 0) & ~FLAG_LOADING
        if "flags" in fields:
            flags = (flags & ~FLAG_SUPPRESS_EMBEDS) | (fields["flags"] & FLAG_SUPPRESS_EMBEDS)
        msg["flags"] = flags
        msg["attachments"] = self._attachments_for(body, uploads, self._channel(int(msg["channel_id"])),
                                                   existing=msg["attachments"],
                                                   ephemeral=bool(flags & FLAG_EPHEMERAL))
        if not (msg["content"] or msg["embeds"] or msg["attachments"] or msg["components"]):
            raise _err(_EMPTY_MESSAGE)
        if not was_loading:
            msg["edited_timestamp"] = _now_iso()
        record.payload = msg
        record.history.append(copy.deepcopy(msg))
        self._dispatch_message_event("MESSAGE_UPDATE", msg)
        return msg

    def _delete_record(self, record: _MessageRecord) -> None:
        record.deleted = True
        payload = {"id": record.payload["id"], "channel_id": record.payload["channel_id"]}
        if record.payload.get("guild_id"):
            payload["guild_id"] = record.payload["guild_id"]
        if not record.payload.get("flags", 0) & FLAG_EPHEMERAL:
            self._dispatch_message_event("MESSAGE_DELETE", payload)

    def _record_message(self, msg: JSONDict, source: str, interaction_id: int | None = None) -> None:
        record = _MessageRecord(copy.deepcopy(msg), source, [copy.deepcopy(msg)], interaction_id)
        self._messages[int(msg["id"])] = record
        self._message_order.append(int(msg["id"]))
        channel = self._channels.get(int(msg["channel_id"]))
        if channel is not None:
            channel["last_message_id"] = msg["id"]
        self._dispatch_message_event("MESSAGE_CREATE", msg)

    def _dispatch_message_event(self, event: str, msg: JSONDict) -> None:
        guild_id = int(msg["guild_id"]) if msg.get("guild_id") else None
        if msg.get("flags", 0) & FLAG_EPHEMERAL:
            return
        needed = INTENT_GUILD_MESSAGES if guild_id else INTENT_DIRECT_MESSAGES
        for session in self._live_sessions(guild_id):
            if not session.intents & needed:
                continue
            payload = copy.deepcopy(msg)
            mentioned = any(u.get("id") == str(self.bot_id) for u in payload.get("mentions", []))
            own = payload.get("author", {}).get("id") == str(self.bot_id)
            if guild_id and not (session.intents & INTENT_MESSAGE_CONTENT or mentioned or own) and "content" in payload:
                payload.update(content="", embeds=[], attachments=[], components=[])
            self._dispatch(session, event, payload)

    def _store(self, data: bytes, filename: str, content_type: str | None, prefix: str) -> StoredFile:
        file_id = self.snowflake()
        ctype = content_type or mimetypes.guess_type(filename)[0]
        width, height = _image_size(data) if (ctype or "").startswith("image/") else (None, None)
        url = f"{self.http_base}/{prefix}/{file_id}/{urllib.parse.quote(_served_name(filename))}"
        stored = StoredFile(file_id, bytes(data), filename, ctype, url, width, height)
        self._files[file_id] = stored
        return stored

    @staticmethod
    def _attachment_payload(stored: StoredFile, *, description: str | None = None,
                            ephemeral: bool = False) -> JSONDict:
        att: JSONDict = {"id": str(stored.id), "filename": stored.filename, "size": len(stored.data),
                         "url": stored.url, "proxy_url": stored.url, "content_type": stored.content_type,
                         "flags": 0}
        if stored.width is not None:
            att.update(width=stored.width, height=stored.height)
        if description:
            att["description"] = description
        if ephemeral:
            att["ephemeral"] = True
        return att

    def _with_bytes(self, msg: JSONDict) -> JSONDict:
        out = copy.deepcopy(msg)
        for att in out.get("attachments", []):
            stored = self._files.get(int(att["id"]))
            if stored is not None:
                att["data"] = stored.data
        return out

    # ------------------------------------------------------------------ interactions: building and delivery

    def _find_command(self, name: str, ctype: int, guild: JSONDict | int | None) -> tuple[JSONDict, int | None]:
        guild_id = None if guild is None else _as_id(guild, "guild")
        if guild_id is not None:
            found = self._commands.get(guild_id, {}).get((name, ctype))
            if found is not None:
                return found, guild_id
        found = self._commands.get(None, {}).get((name, ctype))
        if found is None:
            raise KeyError(f"no synced command {name!r} of type {ctype} (global or in guild {guild_id}); "
                           "call bot.tree.sync() first")
        return found, None

    def _options_tree(self, cmd: JSONDict, path: list[str], values: dict[str, Any] | list[JSONDict],
                      focused: str | None, resolved: JSONDict, guild: JSONDict | int | None) -> list[JSONDict]:
        defs = cmd.get("options") or []
        chain: list[JSONDict] = []
        for part in path:
            sub = next((o for o in defs
                        if o["name"] == part and o["type"] in (_OPTION_SUBCOMMAND, _OPTION_GROUP)), None)
            if sub is None:
                raise KeyError(f"command {cmd['name']!r} has no subcommand or group {part!r}")
            chain.append(sub)
            defs = sub.get("options") or []
        if isinstance(values, list):
            leaf = copy.deepcopy(values)
        else:
            leaf = []
            for name, value in values.items():
                d = next((o for o in defs if o["name"] == name), None)
                if d is None:
                    raise KeyError(f"no option {name!r}; options are {[o['name'] for o in defs]}")
                opt: JSONDict = {"name": name, "type": d["type"]}
                if name == focused:
                    opt.update(value=value, focused=True)
                else:
                    opt["value"] = self._option_value(d["type"], value, resolved, guild)
                leaf.append(opt)
        for sub in reversed(chain):
            leaf = [{"name": sub["name"], "type": sub["type"], "options": leaf}]
        return leaf

    def _option_value(self, otype: int, value: Any, resolved: JSONDict, guild: JSONDict | int | None) -> Any:
        if otype == _OPTION_ATTACHMENT:
            att = value if isinstance(value, dict) else self._attachment_payload(self._files[_as_id(value)])
            resolved.setdefault("attachments", {})[str(att["id"])] = copy.deepcopy(att)
            return str(att["id"])
        if otype == _OPTION_USER:
            return self._resolve_user(value, resolved, guild)
        if otype == _OPTION_CHANNEL:
            channel = self._channel(_as_id(value, "channel"))
            resolved.setdefault("channels", {})[channel["id"]] = {
                k: channel.get(k) for k in ("id", "name", "type", "guild_id", "parent_id", "nsfw")
            } | {"permissions": str(ALL_PERMISSIONS)}
            return channel["id"]
        if otype in (8, 9) and isinstance(value, dict):
            return str(value["id"])
        return value

    def _resolve_user(self, value: Any, resolved: JSONDict, guild: JSONDict | int | None) -> str:
        user_id = _as_id(value, "user")
        resolved.setdefault("users", {})[str(user_id)] = self._user_payload(user_id)
        if guild is not None and user_id in self._guild(guild)["members"]:
            resolved.setdefault("members", {})[str(user_id)] = self._member_payload(
                _as_id(guild), user_id, with_user=False, with_permissions=True)
        return str(user_id)

    def _deliver(self, kind: int, guild: JSONDict | int | None, channel: JSONDict | int, user: JSONDict | int,
                 data: JSONDict, locale: str | None, message: JSONDict | None = None,
                 command: JSONDict | None = None) -> JSONDict:
        guild_id = None if guild is None else _as_id(guild, "guild")
        channel_id = _as_id(channel, "channel")
        ch = self._channel(channel_id)
        user_id = _as_id(user, "user")
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}: create it with user() first")
        if guild_id is not None and ch.get("guild_id") != str(guild_id):
            raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
        session = next(iter(self._live_sessions(guild_id)), None)
        if session is None:
            raise RuntimeError(f"no bot connected to the gateway for guild {guild_id}")
        context = 0 if guild_id is not None else 1 if ch["type"] == 1 else 2
        owners = self._integration_owners(context, guild_id, user_id, command, message)
        if command is not None:
            self._check_offered(command, context, guild_id, user_id)
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        limit = self.upload_limit(guild_id)
        payload: JSONDict = {
            "id": str(interaction_id), "application_id": str(self.app_id), "type": kind, "token": token,
            "version": 1, "data": data, "channel_id": str(channel_id),
            "locale": locale or self._users[user_id]["locale"],
            "entitlements": [], "entitlement_sku_ids": [], "attachment_size_limit": limit,
            "authorizing_integration_owners": owners, "context": context,
        }
        if guild_id is not None:
            g = self._guild(guild_id)
            if user_id not in g["members"]:
                self.member(guild_id, user_id)
            member = self._member_payload(guild_id, user_id, with_permissions=True)
            payload.update(
                guild_id=str(guild_id), guild_locale=g["locale"], member=member,
                guild={"id": str(guild_id), "locale": g["locale"], "features": list(g["features"])},
                app_permissions=str(self._permissions(guild_id, self.bot_id)),
                channel={**copy.deepcopy(ch), "permissions": member["permissions"]},
            )
        else:
            recipients = ch["recipients"] if ch["type"] == 3 else [self._user_payload(user_id)]
            payload.update(user=self._user_payload(user_id), app_permissions=str(DEFAULT_BOT_PERMISSIONS),
                           channel={**copy.deepcopy(ch), "recipients": copy.deepcopy(recipients)})
        if message is not None:
            payload["message"] = message
        now = time.monotonic()
        inter = _Interaction(interaction_id, token, kind, copy.deepcopy(payload), guild_id, channel_id, limit,
                             session.shard, now, now + self.token_ttl_s)
        if message is not None:
            inter.original_id = int(message["id"])
        self._interactions[interaction_id] = inter
        self._by_token[token] = inter
        self._dispatch(session, "INTERACTION_CREATE", payload)
        return copy.deepcopy(payload)

    def _integration_owners(self, context: int, guild_id: int | None, user_id: int, command: JSONDict | None,
                            message: JSONDict | None) -> JSONDict:
        """`authorizing_integration_owners`: the installs this interaction comes through. A
        server's install ("0": the guild, or "0" in a DM with the bot) and the person's own
        ("1": their id), each only where the command allows that install type. A press on a
        component keeps the owners of the interaction that made the message."""
        if message is not None and (message.get("interaction_metadata") or {}).get("authorizing_integration_owners"):
            return copy.deepcopy(message["interaction_metadata"]["authorizing_integration_owners"])
        owners: JSONDict = {}
        if context != 2:
            owners["0"] = str(guild_id or 0)
        if user_id in self._user_installs:
            owners["1"] = str(user_id)
        if command is not None:
            allowed = command.get("integration_types") or [0]
            owners = {key: value for key, value in owners.items() if int(key) in allowed}
        if not owners:
            raise PermissionError(f"Discord offers no command of this app to user {user_id} here (context {context}): "
                                  "no install it allows (install_for_user() for a user install)")
        return owners

    def _check_offered(self, command: JSONDict, context: int, guild_id: int | None, user_id: int) -> None:
        """Discord only offers a command where its `contexts` allow (unset: servers and the
        bot's DMs) and, in a server, to members with its `default_member_permissions` (or an
        admin's override); what it does not offer cannot be invoked."""
        contexts = command.get("contexts")
        if context not in (contexts if contexts is not None else [0, 1]):
            raise PermissionError(f"Discord does not offer {command['name']!r} in context {context}")
        required = command.get("default_member_permissions")
        if guild_id is None or required is None or (guild_id, command["id"], user_id) in self._command_overrides:
            return
        have = self._permissions(guild_id, user_id)
        if not have & PERM_ADMINISTRATOR and have & int(required) != int(required):
            raise PermissionError(f"Discord does not offer {command['name']!r} to user {user_id}: it needs "
                                  f"permissions {required}")

    def _interaction(self, interaction: Any) -> _Interaction:
        interaction_id = _as_id(interaction, "interaction")
        if interaction_id not in self._interactions:
            raise KeyError(f"unknown interaction {interaction_id}")
        return self._interactions[interaction_id]

    # ------------------------------------------------------------------ world helpers

    def _guild(self, guild: JSONDict | int) -> JSONDict:
        guild_id = _as_id(guild, "guild")
        if guild_id not in self._guilds:
            raise KeyError(f"unknown guild {guild_id}: create it with guild() first")
        return self._guilds[guild_id]

    def _channel(self, channel_id: int) -> JSONDict:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise _err(_UNKNOWN_CHANNEL)
        return channel

    def _user_payload(self, user_id: int) -> JSONDict:
        if user_id not in self._users:
            raise KeyError(f"unknown user {user_id}: create it with user() first")
        return copy.deepcopy(self._users[user_id]["payload"])

    @staticmethod
    def _role(role_id: int, name: str, permissions: int, position: int, tags: JSONDict | None = None) -> JSONDict:
        role: JSONDict = {
            "id": str(role_id), "name": name, "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False, "icon": None, "unicode_emoji": None, "position": position,
            "permissions": str(permissions), "managed": tags is not None, "mentionable": False, "flags": 0,
        }
        if tags is not None:
            role["tags"] = tags
        return role

    def _permissions(self, guild_id: int, user_id: int) -> int:
        g = self._guilds[guild_id]
        perms = int(g["roles"][guild_id]["permissions"])
        member = g["members"].get(user_id)
        if member is not None:
            perms |= member["permissions"]
        if user_id == g["owner_id"] or perms & PERM_ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def _member_payload(self, guild_id: int, user_id: int, *, with_user: bool = True,
                        with_permissions: bool = False) -> JSONDict:
        record = self._guilds[guild_id]["members"][user_id]
        member: JSONDict = {
            "roles": [str(r) for r in record["roles"]], "joined_at": record["joined_at"], "deaf": False,
            "mute": False, "flags": 0, "pending": False, "nick": record.get("nick"), "avatar": None, "banner": None,
            "premium_since": None, "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self._user_payload(user_id)
        if with_permissions:
            member["permissions"] = str(self._permissions(guild_id, user_id))
        return member

    def _guild_create_payload(self, guild_id: int, intents: int) -> JSONDict:
        """GUILD_CREATE as Discord sends it: without the presences intent `members` holds only the bot."""
        g = self._guilds[guild_id]
        member_ids = [uid for uid in g["members"] if intents & INTENT_GUILD_PRESENCES or uid == self.bot_id]
        channels = []
        for channel_id in g["channels"]:
            channel = copy.deepcopy(self._channels[channel_id])
            channel.pop("guild_id", None)
            channels.append(channel)
        return {
            "id": str(guild_id), "name": g["name"], "icon": None, "splash": None, "discovery_splash": None,
            "banner": None, "description": None, "owner_id": str(g["owner_id"]), "region": None,
            "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "public_updates_channel_id": None,
            "safety_alerts_channel_id": None, "vanity_url_code": None, "application_id": None,
            "premium_tier": g["premium_tier"], "premium_subscription_count": (0, 2, 7, 14)[g["premium_tier"]],
            "premium_progress_bar_enabled": False, "preferred_locale": g["locale"], "features": list(g["features"]),
            "max_members": 500000, "max_video_channel_users": 25, "max_stage_video_channel_users": 50,
            "roles": [copy.deepcopy(r) for r in g["roles"].values()], "emojis": [], "stickers": [],
            "channels": channels, "threads": [],
            "members": [self._member_payload(guild_id, uid) for uid in member_ids],
            "member_count": len(g["members"]), "large": False, "unavailable": False, "joined_at": g["joined_at"],
            "lazy": True, "voice_states": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "embedded_activities": [], "incidents_data": None,
        }

    # ------------------------------------------------------------------ gateway

    def _live_sessions(self, guild_id: int | None) -> list[_Session]:
        return [s for s in self._sessions.values() if not s.dead and s.covers(guild_id)]

    def _dispatch_to_guild(self, guild_id: int, event: str, payload: JSONDict) -> None:
        for session in self._live_sessions(guild_id):
            if guild_id in session.guild_ids:
                self._dispatch(session, event, payload)

    def _dispatch(self, session: _Session, event: str, payload: JSONDict) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": copy.deepcopy(payload)}
        session.sent.append(frame)
        self.gateway_events.append({"shard": list(session.shard), "session_id": session.session_id,
                                    "t": event, "s": session.seq, "d": copy.deepcopy(payload)})
        if session.conn is not None:
            session.conn.send(frame)

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoclose=True)
        await ws.prepare(request)
        conn = _Connection(ws, dict(request.query))
        self._connections.append(conn)
        self._connection_log.append(conn)
        writer = asyncio.create_task(conn.writer(), name="fake-discord-gateway-writer")
        try:
            if conn.query.get("encoding", "json") != "json":
                conn.close(4002, "Error while decoding payload.")
            elif conn.compress not in (None, "zlib-stream", "zstd-stream"):
                conn.close(4000, "Unknown compression.")
            elif conn.query.get("v", str(API_VERSION)) != str(API_VERSION):
                conn.close(4012, "Invalid API version.")
            else:
                conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms,
                                           "_trace": ["[\"fake-discord-gateway\"]"]}, "s": None, "t": None})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        frame = json.loads(msg.data)
                    except ValueError:
                        conn.close(4002, "Error while decoding payload.")
                        continue
                    try:
                        self._gateway_op(conn, frame)
                    except Exception as exc:  # a bug in the fake: record it, close like Discord's 4000
                        self.errors.append(exc)
                        conn.close(4000, "Unknown error.")
                elif msg.type == WSMsgType.BINARY:
                    conn.close(4002, "Error while decoding payload.")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed = True
            conn.close_code = ws.close_code
            conn.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
                if ws.close_code in (1000, 1001):  # a clean close ends the session, as on Discord
                    conn.session.dead = True
            self._connections.remove(conn)
        return ws

    def _gateway_op(self, conn: _Connection, frame: JSONDict) -> None:
        op, d = frame.get("op"), frame.get("d")
        if op == 1:
            conn.heartbeats += 1
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            self._identify(conn, d or {})
        elif op == 3:
            self.presence_updates.append({"shard": conn.shard_id, **(d or {})})
        elif op == 4:
            return
        elif op == 6:
            self._resume(conn, d or {})
        elif op == 8:
            self._request_members(conn, d or {})
        else:
            conn.close(4001, "Unknown opcode.")

    def _identify(self, conn: _Connection, d: JSONDict) -> None:
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if d.get("token") != self.token:
            conn.close(4004, "Authentication failed.")
            return
        shard = d.get("shard")
        if shard is not None and (not isinstance(shard, list) or len(shard) != 2 or not 0 <= shard[0] < shard[1]):
            conn.close(4010, "Invalid shard.")
            return
        if "intents" not in d:
            conn.close(4013, "Invalid intent(s).")
            return
        shard_pair = (int(shard[0]), int(shard[1])) if shard else (0, 1)
        self.identifies.append({k: copy.deepcopy(v) for k, v in d.items() if k != "token"}
                               | {"shard": list(shard) if shard else None})
        for old in self._sessions.values():
            if old.shard == shard_pair and not old.dead:
                old.dead = True
                if old.conn is not None:
                    old.conn.close(4009, "Session timed out.")
        session = _Session(secrets.token_hex(16), shard_pair, int(d["intents"]))
        self._sessions[session.session_id] = session
        session.conn = conn
        conn.session = session
        guild_ids = [gid for gid in self._guilds if session.covers(gid)]
        ready: JSONDict = {
            "v": API_VERSION, "user": self._me_payload(),
            "guilds": [{"id": str(gid), "unavailable": True} for gid in guild_ids],
            "session_id": session.session_id, "session_type": "normal", "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": self.application_flags},
            "private_channels": [], "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"], "user_settings": {}, "auth": {}, "_trace": ["[\"fake-discord\"]"],
        }
        if shard is not None:
            ready["shard"] = list(shard_pair)
        self._dispatch(session, "READY", ready)
        for gid in guild_ids:
            session.guild_ids.add(gid)
            self._dispatch(session, "GUILD_CREATE", self._guild_create_payload(gid, session.intents))

    def _resume(self, conn: _Connection, d: JSONDict) -> None:
        session = self._sessions.get(str(d.get("session_id")))
        if d.get("token") != self.token:
            conn.close(4004, "Authentication failed.")
            return
        if session is None or session.dead:
            conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        if session.conn is not None and session.conn is not conn:
            session.conn.close(4009, "Session timed out.")
        session.conn = conn
        conn.session = session
        seq = int(d.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > seq:
                conn.send(frame)
        self._dispatch(session, "RESUMED", {"_trace": ["[\"fake-discord\"]"]})

    def _request_members(self, conn: _Connection, d: JSONDict) -> None:
        if conn.session is None:
            conn.close(4003, "Not authenticated.")
            return
        guild_ids = d.get("guild_id")
        for gid in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            g = self._guilds.get(int(gid))
            if g is None:
                continue
            wanted = {int(u) for u in d.get("user_ids") or []}
            query = (d.get("query") or "").lower()
            members = [self._member_payload(g["id"], uid) for uid in g["members"]
                       if (not wanted or uid in wanted)
                       and self._users[uid]["payload"]["username"].lower().startswith(query)]
            if d.get("limit"):
                members = members[: int(d["limit"])]
            chunk: JSONDict = {"guild_id": str(g["id"]), "members": members, "chunk_index": 0, "chunk_count": 1,
                               "not_found": [str(u) for u in wanted if u not in g["members"]]}
            if d.get("presences"):
                chunk["presences"] = []
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            self._dispatch(conn.session, "GUILD_MEMBERS_CHUNK", chunk)
