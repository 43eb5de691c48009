"""A protocol-level fake of the Telegram Bot API, for tests.

`FakeTelegram` is an aiohttp server on 127.0.0.1 that speaks enough of the Bot API for the
real python-telegram-bot `Bot`/`Application` to run against it (pass `base_url` and
`base_file_url`). Tests play the users (`send_text`, `send_photo`, `press_button`, ...) and
read back what the bot did (`sent`, `messages_to`, `file_bytes`).

Wire format as python-telegram-bot 22 sends it: every call is a POST; calls without files
are `application/x-www-form-urlencoded` (httpx `data=`), calls with files are
`multipart/form-data`. In both, scalar values are plain strings and objects/arrays
(reply_markup, reply_parameters, commands, allowed_updates, ...) are JSON-encoded strings.
`application/json` bodies and GET query strings are accepted too.

Faults for tests: `fail_next` answers Telegram's error envelope (a 429 with `retry_after`, a
400, a 5xx), `stall_next` answers only after a delay (the client's read timeout fires first),
`drop_next` closes the connection without an answer. Each takes a Bot API method name or
`DOWNLOAD`, the file download (`GET /file/bot<token>/<file_path>`).

Webhooks as Telegram runs them: once the bot calls `setWebhook`, `getUpdates` answers 409 and
the fake delivers each pending update (what the tests' users do, as with polling) by POSTing
it as JSON to the registered URL with the registered secret in
`X-Telegram-Bot-Api-Secret-Token`, one at a time and in order; an answer other than 2xx (or
no answer) is kept as `last_error_message` and the update is retried. `deleteWebhook` ends
that. `webhook` is what was registered, `webhook_posts` each delivery's outcome, and
`post_to_webhook` is anyone else POSTing to the URL (with a secret of their choosing). The
one allowance over Telegram: the URL may be plain http on loopback, where the bot's test
server listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import ipaddress
import itertools
import json
import mimetypes
import re
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from PIL import Image

JSONDict = dict[str, Any]

# Parameters whose form value is a JSON-encoded object or array.
_JSON_FIELDS = {
    "reply_markup", "reply_parameters", "entities", "caption_entities", "commands", "scope",
    "allowed_updates", "link_preview_options", "media", "results", "permissions",
}
_INT_FIELDS = {
    "chat_id", "message_id", "user_id", "offset", "limit", "reply_to_message_id",
    "message_thread_id", "duration", "width", "height", "cache_time", "from_chat_id", "max_connections",
}
_FLOAT_FIELDS = {"timeout"}
_BOOL_FIELDS = {
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
    "has_spoiler", "supports_streaming", "disable_web_page_preview", "allow_sending_without_reply",
    "disable_content_type_detection", "show_caption_above_media", "allow_paid_broadcast",
}
_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
_MEDIA_KINDS = ("animation", "video", "document", "photo")
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_PHOTO_SIDES = (90, 320, 800)
DOWNLOAD = "download"  # the file download, as a method name in `requests` and for faults
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_WEBHOOK_PORTS = (443, 80, 88, 8443)


@dataclass(frozen=True)
class _Fault:
    """What the next call of a method gets instead of a plain answer."""

    kind: str  # "error", "stall" or "drop"
    error: ApiError | None = None
    seconds: float = 0.0


class ApiError(Exception):
    """An error the fake answers in Telegram's error envelope."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


class _Dropped(Exception):
    """The connection of the request at hand was closed on purpose (`drop_next`)."""


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class StoredFile:
    """A file held server-side, addressable by file_id and downloadable by file_path."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str
    kind: str
    width: int = 0
    height: int = 0
    duration: int = 0
    photo_sizes: list[JSONDict] | None = None  # for photos: every PhotoSize of the same photo


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return False


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _command_entities(text: str) -> list[JSONDict]:
    return [
        {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


class _TelegramHTML(HTMLParser):
    """Parses Telegram's HTML parse mode into plain text + entities; raises ApiError on bad markup."""

    _TAGS = {
        "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
        "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
        "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
        "blockquote": "blockquote", "span": "spoiler", "tg-emoji": "custom_emoji",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[JSONDict] = []
        self._stack: list[tuple[str, int, JSONDict]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self._TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}"')
        entity: JSONDict = {"type": self._TAGS[tag]}
        if tag == "a":
            entity["url"] = dict(attrs).get("href") or ""
        self._stack.append((tag, _utf16_len(self.text), entity))

    def handle_endtag(self, tag: str) -> None:
        if not self._stack or self._stack[-1][0] != tag:
            raise _bad(f'can\'t parse entities: Unmatched end tag "{tag}"')
        _, start, entity = self._stack.pop()
        length = _utf16_len(self.text) - start
        if length:
            self.entities.append({**entity, "offset": start, "length": length})

    def handle_data(self, data: str) -> None:
        self.text += data

    def finish(self) -> tuple[str, list[JSONDict]]:
        self.close()
        if self._stack:
            raise _bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{self._stack[-1][0]}"')
        return self.text, sorted(self.entities, key=lambda e: e["offset"])


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def _parse_markdown_v2(text: str) -> str:
    """Checks MarkdownV2 escaping like Telegram and returns the text with markup removed (no entities)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = text.find(fence, i + len(fence))
            if end < 0:
                raise _bad("can't parse entities: Can't find end of Code entity")
            out.append(text[i + len(fence): end])
            i = end + len(fence)
            continue
        if ch == "]" and text.startswith("](", i):
            end = text.find(")", i + 2)
            if end < 0:
                raise _bad("can't parse entities: Can't find end of a URL")
            i = end + 1
            continue
        if ch in "_*~|[" or (ch == ">" and (i == 0 or text[i - 1] == "\n")):
            i += 1
            continue
        if ch in _MDV2_RESERVED:
            raise _bad(
                f"can't parse entities: Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(ch)
        i += 1
    return "".join(out)


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return 0, 0


def _mp4_info(data: bytes) -> tuple[int, int, int]:
    """Best-effort (width, height, duration seconds) from an MP4's moov/mvhd/tkhd boxes."""
    width = height = duration = 0

    def walk(start: int, end: int) -> None:
        nonlocal width, height, duration
        pos = start
        while pos + 8 <= end:
            size, box = struct.unpack(">I4s", data[pos: pos + 8])
            header = 8
            if size == 1:
                size = struct.unpack(">Q", data[pos + 8: pos + 16])[0]
                header = 16
            elif size == 0:
                size = end - pos
            if size < header:
                return
            body = pos + header
            if box in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"):
                walk(body, pos + size)
            elif box == b"mvhd":
                if data[body] == 1:
                    timescale, dur = struct.unpack(">IQ", data[body + 20: body + 32])
                else:
                    timescale, dur = struct.unpack(">II", data[body + 12: body + 20])
                duration = round(dur / timescale) if timescale else 0
            elif box == b"tkhd" and not width:
                w, h = struct.unpack(">II", data[pos + size - 8: pos + size])
                width, height = w >> 16, h >> 16
            pos += size

    try:
        walk(0, len(data))
    except (struct.error, IndexError):
        pass
    return width, height, duration


def _as_int(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _decode_params(raw: dict[str, Any]) -> JSONDict:
    """Turns form strings into the values Telegram would see (JSON fields, ints, bools)."""
    out: JSONDict = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _bad(f"can't parse {key} JSON object") from None
            elif key in _INT_FIELDS:
                value = _as_int(value)
            elif key in _FLOAT_FIELDS:
                try:
                    value = float(value)
                except ValueError:
                    raise _bad(f"wrong parameter {key}") from None
            elif key in _BOOL_FIELDS:
                value = value.lower() in ("true", "1")
        out[key] = value
    return out


class FakeTelegram:
    """An aiohttp server speaking the Bot API on 127.0.0.1:<free port>.

    Bot-side calls recorded in `sent` (in order): sendMessage, editMessageText,
    editMessageCaption, editMessageReplyMarkup, deleteMessage, sendChatAction, sendAnimation,
    sendVideo, sendDocument, sendPhoto, answerCallbackQuery. `requests` logs every call except
    getUpdates (including failed ones, with the HTTP status and body encoding; a stalled or
    dropped one with its `fault`), file downloads too (method `DOWNLOAD`, with the `path`).
    Unexpected exceptions inside the fake answer 500 and are kept in `errors`.
    """

    def __init__(self, token: str = "123456:TEST-TOKEN", bot_username: str = "memeswap_test_bot") -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Memeswap Test",
            "username": bot_username,
        }
        self.max_download_bytes: int = 20 * 1024 * 1024
        self.max_upload_bytes: int = 50 * 1024 * 1024
        self.sent: list[JSONDict] = []
        self.requests: list[JSONDict] = []
        self.errors: list[BaseException] = []
        self.delivered: list[int] = []  # update_ids in the order getUpdates handed them out
        self.commands: dict[str, list[JSONDict]] = {}
        self.polls = 0  # getUpdates calls, answered or not
        self.webhook: JSONDict | None = None  # url, secret_token, allowed_updates, max_connections
        self.webhook_posts: list[JSONDict] = []  # each delivery: update_id, status (None: no answer)
        self.webhook_retry_s = 0.2  # Telegram's backoff, shortened for tests
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task | None = None
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._admins: dict[int, tuple[list[int], int | None]] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}  # chat_id -> message_id -> record
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._update_counter = itertools.count(1)
        self._pending: list[JSONDict] = []
        self._allowed_updates: list[str] | None = None
        self._callback_queries: dict[str, JSONDict] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._poll_generation = 0
        self._closed = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._methods: dict[str, Callable[[JSONDict, dict[str, JSONDict]], Any]] = {
            "getme": lambda p, f: self.bot_user | {
                "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
            "logout": lambda p, f: True,
            "close": lambda p, f: True,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
            "getfile": self._get_file,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "sendanimation": lambda p, f: self._send_media("animation", p, f),
            "sendvideo": lambda p, f: self._send_media("video", p, f),
            "senddocument": lambda p, f: self._send_media("document", p, f),
            "sendphoto": lambda p, f: self._send_media("photo", p, f),
            "answercallbackquery": self._answer_callback_query,
            "setmycommands": self._set_my_commands,
            "getmycommands": lambda p, f: self.commands.get(self._commands_key(p), []),
            "deletemycommands": self._delete_my_commands,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getchat": self._get_chat,
        }
        self._canonical = {
            name.lower(): name for name in (
                "sendMessage", "editMessageText", "editMessageCaption", "editMessageReplyMarkup",
                "deleteMessage", "sendChatAction", "sendAnimation", "sendVideo", "sendDocument",
                "sendPhoto", "answerCallbackQuery", "getUpdates", "getFile", "getMe", "setMyCommands",
                "getMyCommands", "deleteMyCommands", "getChatMember", "getChatAdministrators", "getChat",
                "setWebhook", "deleteWebhook", "getWebhookInfo", "logOut", "close",
            )
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Binds a free loopback port and starts serving."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._closed = False
        self._closing = asyncio.Event()

    async def close(self) -> None:
        """Wakes every long poll (they answer []) and stops the server."""
        self._closed = True
        self._closing.set()
        self._wake()
        await self._stop_delivering()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """PTB's `base_url`: the token and method name are appended to it."""
        return f"http://127.0.0.1:{self._require_port()}/bot"

    @property
    def base_file_url(self) -> str:
        """PTB's `base_file_url`: the token and the file_path are appended to it."""
        return f"http://127.0.0.1:{self._require_port()}/file/bot"

    def _require_port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    # ------------------------------------------------------------------ users' side

    def user(self, user_id: int, first_name: str = "Alice", username: str | None = None) -> JSONDict:
        """A User object (registered, so getChatMember knows it)."""
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        self._users[user_id] = user
        return dict(user)

    def private_chat(self, user: JSONDict) -> JSONDict:
        """The private Chat between `user` and the bot."""
        chat: JSONDict = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if user.get("username"):
            chat["username"] = user["username"]
        self._chats[chat["id"]] = chat
        return dict(chat)

    def group_chat(self, chat_id: int, title: str = "Group") -> JSONDict:
        """A group Chat; ids starting with -100 are supergroups, as in Telegram."""
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat = {"id": chat_id, "type": kind, "title": title}
        self._chats[chat_id] = chat
        return dict(chat)

    def set_admins(self, chat_id: int, user_ids: list[int], owner_id: int | None = None) -> None:
        """Sets who getChatMember/getChatAdministrators report as administrators (and the owner)."""
        self._admins[chat_id] = (list(user_ids), owner_id)

    def add_file(self, data: bytes, file_name: str | None = None, mime_type: str | None = None) -> str:
        """Stores a document server-side and returns its file_id."""
        return self._store(data, "document", file_name, mime_type).file_id

    def send_text(self, chat: JSONDict, user: JSONDict, text: str, reply_to: JSONDict | None = None) -> JSONDict:
        """A user sends a text message; "/cmd" words get bot_command entities."""
        fields: JSONDict = {"text": text}
        entities = _command_entities(text)
        if entities:
            fields["entities"] = entities
        if reply_to is not None:
            fields["reply_to_message"] = self._current(reply_to)
        return self._user_message(chat, user, fields)

    def send_photo(self, chat: JSONDict, user: JSONDict, jpeg_bytes: bytes, caption: str | None = None) -> JSONDict:
        """A user sends a photo: Message.photo holds downscaled copies and the original as largest size."""
        stored = self._store_photo(jpeg_bytes)
        return self._user_message(chat, user, {"photo": copy.deepcopy(stored.photo_sizes), **self._caption(caption)})

    def send_document(
        self, chat: JSONDict, user: JSONDict, data: bytes, file_name: str, mime_type: str,
        caption: str | None = None,
    ) -> JSONDict:
        """A user sends a file as a document."""
        stored = self._store(data, "document", file_name, mime_type)
        return self._user_message(chat, user, {"document": self._media_object(stored), **self._caption(caption)})

    def send_animation(
        self, chat: JSONDict, user: JSONDict, mp4_bytes: bytes, caption: str | None = None,
        file_name: str = "meme.mp4",
    ) -> JSONDict:
        """A user sends a GIF (an MP4 animation); Message has .animation and .document, as Telegram does."""
        stored = self._store(mp4_bytes, "animation", file_name, "video/mp4")
        fields = {
            "animation": self._media_object(stored),
            "document": self._media_object(stored, as_kind="document"),
            **self._caption(caption),
        }
        return self._user_message(chat, user, fields)

    def forward(self, chat: JSONDict, user: JSONDict, message: JSONDict, original_sender: JSONDict) -> JSONDict:
        """A user forwards `message` (its media and caption) into `chat`, as Telegram does:
        the same file ids, and `forward_origin` naming who first sent it."""
        record = self._record(message["chat"]["id"], message["message_id"])
        source = record["message"] if record else message
        fields = {key: copy.deepcopy(value) for key, value in source.items()
                  if key in ("animation", "document", "video", "photo", "caption", "caption_entities", "text",
                             "entities")}
        fields["forward_origin"] = {"type": "user", "date": source.get("date", int(time.time())),
                                    "sender_user": dict(original_sender)}
        return self._user_message(chat, user, fields)

    def send_sticker(self, chat: JSONDict, user: JSONDict, emoji: str = "👍") -> JSONDict:
        """A user sends a (static WebP) sticker."""
        webp = io.BytesIO()
        Image.new("RGBA", (512, 512), (255, 200, 0, 255)).save(webp, "WEBP")
        stored = self._store(webp.getvalue(), "sticker", None, "image/webp", width=512, height=512)
        sticker = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "type": "regular",
                   "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": emoji,
                   "file_size": len(stored.data)}
        return self._user_message(chat, user, {"sticker": sticker})

    def send_voice(self, chat: JSONDict, user: JSONDict, ogg_bytes: bytes = b"OggS" + bytes(400),
                   duration: int = 2) -> JSONDict:
        """A user sends a voice message (OGG/Opus)."""
        stored = self._store(ogg_bytes, "voice", None, "audio/ogg", duration=duration)
        voice = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "duration": duration,
                 "mime_type": "audio/ogg", "file_size": len(stored.data)}
        return self._user_message(chat, user, {"voice": voice})

    def press_button(self, chat: JSONDict, user: JSONDict, message: JSONDict, callback_data: str) -> JSONDict:
        """A user presses an inline button of a bot message; enqueues the CallbackQuery and returns it."""
        record = self._record(chat["id"], message["message_id"])
        if record is None or not record["from_bot"]:
            raise ValueError(f"no bot message {message.get('message_id')} in chat {chat['id']}")
        markup = record["message"].get("reply_markup") or {}
        datas = [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]
        if callback_data not in datas:
            raise ValueError(f"message has no button with callback_data {callback_data!r} (has {datas})")
        return self.send_callback(chat, user, message, callback_data)

    def send_callback(self, chat: JSONDict, user: JSONDict, message: JSONDict, data: str | None) -> JSONDict:
        """A CallbackQuery on a bot message with any `data`, as a modified client may send it
        (None leaves `data` out); enqueues it and returns it. `press_button` is the honest tap."""
        record = self._record(chat["id"], message["message_id"])
        if record is None or not record["from_bot"]:
            raise ValueError(f"no bot message {message.get('message_id')} in chat {chat['id']}")
        self._users.setdefault(user["id"], dict(user))
        query = {
            "id": str(secrets.randbits(63)),
            "from": dict(user),
            # As in Telegram, the message comes with the one it replied to (one level deep).
            "message": copy.deepcopy(record["message"]),
            "chat_instance": str(abs(hash(("chat", chat["id"])))),
        }
        if data is not None:
            query["data"] = data
        self._callback_queries[query["id"]] = {"chat_id": chat["id"], "answered": False}
        self._enqueue("callback_query", query)
        return copy.deepcopy(query)

    async def post_to_webhook(self, update: JSONDict, secret: str | None) -> int:
        """POSTs `update` to the registered webhook URL as anyone on the internet could, with
        `secret` in X-Telegram-Bot-Api-Secret-Token (None: no header); the HTTP status."""
        if self.webhook is None:
            raise RuntimeError("no webhook is set")
        return await self._post(self.webhook["url"], update, secret)

    def answered_callbacks(self) -> list[str]:
        """The ids of the callback queries the bot answered, in order."""
        return [s["params"]["callback_query_id"] for s in self.sent if s["method"] == "answerCallbackQuery"]

    # ------------------------------------------------------------------ tests reading back

    def messages_to(self, chat_id: int, include_user: bool = False) -> list[JSONDict]:
        """The bot's messages in a chat as the user sees them now (edits applied, deleted ones gone).

        Each is a Message dict plus `<kind>_bytes` for its media (animation/video/document/photo,
        photo = the largest size) and `reply_markup` as the bot sent it. `include_user` adds the
        users' own messages.
        """
        out = []
        for record in self._messages.get(chat_id, {}).values():
            if record["deleted"] or (not record["from_bot"] and not include_user):
                continue
            msg = copy.deepcopy(record["message"])
            if record.get("markup") is not None:
                msg["reply_markup"] = copy.deepcopy(record["markup"])
            for kind in _MEDIA_KINDS:
                media = msg.get(kind)
                if media:
                    file_id = media[-1]["file_id"] if kind == "photo" else media["file_id"]
                    msg[f"{kind}_bytes"] = self._files[file_id].data
            out.append(msg)
        return out

    def file_bytes(self, file_id: str) -> bytes:
        """The stored bytes behind a file_id."""
        return self._files[file_id].data

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by a getUpdates offset."""
        return copy.deepcopy(self._pending)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Polls `predicate` until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.01)

    def fail_next(
        self, method: str, error_code: int = 429, retry_after: int | None = 1,
        description: str = "Too Many Requests: retry after 1",
    ) -> None:
        """The next call of `method` (or `DOWNLOAD`) answers Telegram's error envelope instead of working."""
        self._add_fault(method, _Fault("error", error=ApiError(error_code, description, retry_after)))

    def stall_next(self, method: str, seconds: float) -> None:
        """The next call of `method` (or `DOWNLOAD`) is answered only after `seconds` (or when
        the fake closes): longer than the client's read timeout, it times out."""
        self._add_fault(method, _Fault("stall", seconds=seconds))

    def drop_next(self, method: str) -> None:
        """The next call of `method` (or `DOWNLOAD`) reads the request and closes the
        connection without an answer."""
        self._add_fault(method, _Fault("drop"))

    def _add_fault(self, method: str, fault: _Fault) -> None:
        self._faults.setdefault(method.lower(), []).append(fault)

    async def _apply_fault(self, name: str, request: web.Request, entry: JSONDict) -> None:
        """Plays the next fault queued for `name`, if any: raises the error, waits out the
        stall, or drops the connection (raising `_Dropped`)."""
        faults = self._faults.get(name)
        if not faults:
            return
        fault = faults.pop(0)
        if fault.kind == "error":
            raise fault.error
        entry["fault"] = fault.kind
        if fault.kind == "stall":
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({closing}, timeout=fault.seconds)
            finally:
                closing.cancel()
            return
        if request.transport is not None:
            request.transport.abort()
        raise _Dropped()

    # ------------------------------------------------------------------ HTTP plumbing

    @staticmethod
    def _envelope_error(err: ApiError) -> web.Response:
        body: JSONDict = {"ok": False, "error_code": err.code, "description": err.description}
        if err.retry_after is not None:
            body["parameters"] = {"retry_after": err.retry_after}
        return web.json_response(body, status=err.code)

    async def _read_request(self, request: web.Request) -> tuple[JSONDict, dict[str, JSONDict], str]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, JSONDict] = {}
        ctype = request.content_type
        if request.method != "POST" or not request.can_read_body:
            return _decode_params(raw), files, "query"
        if ctype == "multipart/form-data":
            try:
                async for part in await request.multipart():
                    if part.name is None:
                        continue
                    if part.filename is not None:
                        files[part.name] = {
                            "data": bytes(await part.read(decode=True)),
                            "file_name": part.filename,
                            "mime_type": part.headers.get("Content-Type"),
                        }
                    else:
                        raw[part.name] = await part.text()
            except Exception as exc:  # a malformed body is the client's fault, not the fake's
                raise _bad(f"can't parse multipart/form-data body: {exc}") from None
            return _decode_params(raw), files, "multipart"
        body = await request.read()
        if ctype == "application/json":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise _bad("can't parse JSON request body") from None
            if not isinstance(data, dict):
                raise _bad("request body must be a JSON object")
            raw.update(data)
            return _decode_params(raw), files, "json"
        raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return _decode_params(raw), files, "form"

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._envelope_error(ApiError(401, "Unauthorized"))
        name = request.match_info["method"].lower()
        method = self._canonical.get(name, request.match_info["method"])
        entry: JSONDict = {"method": method, "status": 200}
        if name != "getupdates":
            self.requests.append(entry)
        else:
            self.polls += 1
        try:
            handler = self._methods.get(name)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            params, files, encoding = await self._read_request(request)
            entry.update(encoding=encoding, params=params, files={k: v["data"] for k, v in files.items()})
            await self._apply_fault(name, request, entry)
            result = handler(params, files)
            if asyncio.iscoroutine(result):
                result = await result
            return web.json_response({"ok": True, "result": result})
        except ApiError as err:
            entry["status"] = err.code
            return self._envelope_error(err)
        except _Dropped:
            entry["status"] = None
            return web.Response(status=500)  # never reaches the client: its connection is gone
        except Exception as exc:  # keep serving whatever one request did
            self.errors.append(exc)
            entry["status"] = 500
            return self._envelope_error(ApiError(500, f"Internal Server Error: {exc!r}"))

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        entry: JSONDict = {"method": DOWNLOAD, "status": 200, "path": path}
        self.requests.append(entry)
        stored = next((f for f in self._files.values() if f.file_path == path), None)
        try:
            if request.match_info["token"] != self.token or stored is None:
                raise ApiError(404, "Not Found")
            await self._apply_fault(DOWNLOAD, request, entry)
        except ApiError as err:
            entry["status"] = err.code
            return self._envelope_error(err)
        except _Dropped:
            entry["status"] = None
            return web.Response(status=500)  # never reaches the client: its connection is gone
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _record_sent(self, method: str, chat_id: int | None, params: JSONDict, files: dict[str, JSONDict]) -> None:
        self.sent.append({
            "method": method, "chat_id": chat_id, "params": copy.deepcopy(params),
            "files": {name: f["data"] for name, f in files.items()},
        })

    # ------------------------------------------------------------------ state helpers

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _enqueue(self, kind: str, payload: JSONDict) -> None:
        self._pending.append({"update_id": next(self._update_counter), kind: copy.deepcopy(payload)})
        self._wake()

    def _chat(self, chat_id: Any) -> JSONDict:
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(_as_int(chat_id))
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _new_message(self, chat: JSONDict, sender: JSONDict, fields: JSONDict, from_bot: bool) -> JSONDict:
        chat_id = chat["id"]
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        message = {"message_id": message_id, "from": dict(sender), "chat": dict(chat), "date": int(time.time())}
        message.update(fields)
        self._messages.setdefault(chat_id, {})[message_id] = {
            "message": message, "from_bot": from_bot, "deleted": False, "markup": None,
        }
        return message

    def _user_message(self, chat: JSONDict, user: JSONDict, fields: JSONDict) -> JSONDict:
        self._users.setdefault(user["id"], dict(user))
        self._chats.setdefault(chat["id"], dict(chat))
        message = self._new_message(self._chats[chat["id"]], user, fields, from_bot=False)
        self._enqueue("message", message)
        return copy.deepcopy(message)

    def _record(self, chat_id: Any, message_id: Any) -> JSONDict | None:
        record = self._messages.get(_as_int(chat_id), {}).get(_as_int(message_id))
        return None if record is None or record["deleted"] else record

    def _current(self, message: JSONDict) -> JSONDict:
        record = self._record(message["chat"]["id"], message["message_id"])
        msg = copy.deepcopy(record["message"] if record else message)
        msg.pop("reply_to_message", None)
        return msg

    @staticmethod
    def _caption(caption: str | None) -> JSONDict:
        if not caption:
            return {}
        fields: JSONDict = {"caption": caption}
        entities = _command_entities(caption)
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _store(
        self, data: bytes, kind: str, file_name: str | None, mime_type: str | None,
        width: int = 0, height: int = 0, duration: int = 0,
    ) -> StoredFile:
        n = next(self._file_counter)
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        else:
            ext = mimetypes.guess_extension(mime_type or "") or ""
        if kind in ("animation", "video") and not (width and height):
            w, h, d = _mp4_info(data)
            if not w:
                w, h = _image_size(data)
            width, height, duration = width or w, height or h, duration or d
        stored = StoredFile(
            file_id=f"FAKE{kind[:3].upper()}{n:06d}{secrets.token_hex(6)}",
            file_unique_id=f"U{n:06d}{secrets.token_hex(3)}",
            data=bytes(data), file_name=file_name, mime_type=mime_type,
            file_path=f"{kind}s/file_{n}{ext}", kind=kind, width=width, height=height, duration=duration,
        )
        self._files[stored.file_id] = stored
        return stored

    def _store_photo(self, data: bytes) -> StoredFile:
        width, height = _image_size(data)
        if not (width and height):
            raise _bad("IMAGE_PROCESS_FAILED")
        sizes: list[StoredFile] = []
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
            for side in _PHOTO_SIDES:
                if max(width, height) > side:
                    small = rgb.copy()
                    small.thumbnail((side, side))
                    buf = io.BytesIO()
                    small.save(buf, "JPEG", quality=80)
                    sizes.append(self._store(buf.getvalue(), "photo", None, "image/jpeg",
                                             width=small.width, height=small.height))
        sizes.append(self._store(data, "photo", None, "image/jpeg", width=width, height=height))
        photo_sizes = [
            {"file_id": s.file_id, "file_unique_id": s.file_unique_id, "width": s.width,
             "height": s.height, "file_size": len(s.data)}
            for s in sizes
        ]
        for s in sizes:
            s.photo_sizes = photo_sizes
        return sizes[-1]

    @staticmethod
    def _media_object(stored: StoredFile, as_kind: str | None = None) -> JSONDict:
        kind = as_kind or stored.kind
        obj: JSONDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if kind in ("animation", "video"):
            obj.update(width=stored.width, height=stored.height, duration=stored.duration)
        if stored.file_name:
            obj["file_name"] = stored.file_name
        if stored.mime_type:
            obj["mime_type"] = stored.mime_type
        obj["file_size"] = len(stored.data)
        return obj

    def _formatted(self, params: JSONDict, key: str, limit: int, empty_error: str | None) -> JSONDict:
        """Applies parse_mode and Telegram's length checks to text/caption; returns message fields."""
        value = params.get(key)
        if value is None or value == "":
            if empty_error:
                raise _bad(empty_error)
            return {}
        value = str(value)
        entities = params.get("entities" if key == "text" else "caption_entities")
        mode = (params.get("parse_mode") or "").lower()
        if mode == "html":
            parser = _TelegramHTML()
            parser.feed(value)
            value, entities = parser.finish()
        elif mode == "markdownv2":
            value = _parse_markdown_v2(value)
        if not value.strip():
            if empty_error:
                raise _bad(empty_error)
            return {}
        if len(value) > limit:
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        if not entities:
            entities = _command_entities(value)
        fields: JSONDict = {key: value}
        if entities:
            fields["entities" if key == "text" else "caption_entities"] = entities
        return fields

    @staticmethod
    def _check_markup(markup: Any) -> JSONDict | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode("utf-8"))
                    if not 1 <= size <= 64:
                        raise _bad("BUTTON_DATA_INVALID")
                elif not any(k in button for k in ("url", "switch_inline_query", "web_app", "login_url",
                                                    "switch_inline_query_current_chat", "copy_text", "pay")):
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        return markup

    def _bot_message(self, chat: JSONDict, params: JSONDict, fields: JSONDict) -> JSONDict:
        markup = self._check_markup(params.get("reply_markup"))
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        reply_id = reply_id or params.get("reply_to_message_id")
        if reply_id is not None:
            target = self._record(reply.get("chat_id", chat["id"]) if isinstance(reply, dict) else chat["id"],
                                  reply_id)
            if target is not None:
                fields["reply_to_message"] = self._current(target["message"])
            elif not (reply.get("allow_sending_without_reply") or params.get("allow_sending_without_reply")):
                raise _bad("message to be replied not found")
        if markup and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        message = self._new_message(chat, self.bot_user, fields, from_bot=True)
        self._messages[chat["id"]][message["message_id"]]["markup"] = markup
        return copy.deepcopy(message)

    # ------------------------------------------------------------------ methods

    async def _set_webhook(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        url = str(params.get("url") or "")
        if not url:  # as in Telegram, an empty URL removes the webhook
            return await self._delete_webhook(params, files)
        parts = urlsplit(url)
        try:
            port = parts.port or 443
        except ValueError:
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443") from None
        loopback = _loopback(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if not loopback and port not in _WEBHOOK_PORTS:
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.match(str(secret)):
            raise _bad("secret token contains unallowed characters")
        max_connections = params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed) or None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed,
                        "max_connections": max_connections}
        self._webhook_error = None
        self._poll_generation += 1  # a long poll in flight ends with 409
        self._wake()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.ensure_future(self._deliver_to_webhook())
        return True

    async def _delete_webhook(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        self.webhook = None
        self._webhook_error = None
        await self._stop_delivering()
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        info: JSONDict = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._pending)}
        if self.webhook is not None:
            info.update(url=self.webhook["url"], max_connections=self.webhook["max_connections"])
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = list(self.webhook["allowed_updates"])
        if self._webhook_error is not None:
            info.update(last_error_date=self._webhook_error[0], last_error_message=self._webhook_error[1])
        return info

    async def _stop_delivering(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver_to_webhook(self) -> None:
        """Telegram's side of a webhook: each pending update POSTed in order until the
        webhook is deleted; an update not answered 2xx stays pending and is tried again."""
        while self.webhook is not None and not self._closed:
            wakeup = self._wakeup
            if self._allowed_updates is not None:
                self._pending = [u for u in self._pending if set(u) - {"update_id"} <= set(self._allowed_updates)]
            if not self._pending:
                await wakeup.wait()
                continue
            update = copy.deepcopy(self._pending[0])
            status = await self._post(self.webhook["url"], update, self.webhook["secret_token"])
            self.webhook_posts.append({"update_id": update["update_id"], "status": status})
            if status is not None and 200 <= status < 300:
                if self._pending and self._pending[0]["update_id"] == update["update_id"]:
                    self._pending.pop(0)
                self.delivered.append(update["update_id"])
                continue
            reason = f"Wrong response from the webhook: {status}" if status else "Connection refused"
            self._webhook_error = (int(time.time()), reason)
            await asyncio.sleep(self.webhook_retry_s)

    @staticmethod
    async def _post(url: str, update: JSONDict, secret: str | None) -> int | None:
        """One POST of an update as Telegram sends it; the status, None when nothing answered."""
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                    session.post(url, json=update, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _get_updates(self, params: JSONDict, files: dict[str, JSONDict]) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed) or None
        if isinstance(offset, int):
            if offset < 0:
                self._pending = self._pending[offset:]
            else:
                self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll answers 409, as Telegram does
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._closed:
                return []
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
            if self._allowed_updates is not None:
                self._pending = [u for u in self._pending if set(u) - {"update_id"} <= set(self._allowed_updates)]
            batch = copy.deepcopy(self._pending[:limit])
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or remaining <= 0:
                self.delivered.extend(u["update_id"] for u in batch)
                return batch
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                pass

    def _get_file(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > self.max_download_bytes:
            raise _bad("file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    def _send_message(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        fields = self._formatted(params, "text", _MAX_TEXT, "message text is empty")
        message = self._bot_message(chat, params, fields)
        self._record_sent("sendMessage", chat["id"], params, files)
        return message

    def _editable(self, params: JSONDict) -> JSONDict:
        if params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake")
        chat = self._chat(params.get("chat_id"))
        if params.get("message_id") is None:
            raise _bad("message identifier is not specified")
        record = self._record(chat["id"], params["message_id"])
        if record is None:
            raise _bad("message to edit not found")
        if not record["from_bot"]:
            raise _bad("message can't be edited")
        return record

    def _apply_edit(self, method: str, record: JSONDict, params: JSONDict, files: dict[str, JSONDict],
                    fields: JSONDict, drop: tuple[str, ...]) -> JSONDict:
        markup = self._check_markup(params.get("reply_markup"))
        message = record["message"]
        inline = markup if markup and "inline_keyboard" in markup else None
        unchanged = all(message.get(k) == v for k, v in fields.items()) and message.get("reply_markup") == inline
        unchanged = unchanged and not any(k in message for k in drop if k not in fields)
        if unchanged:
            raise _bad("message is not modified: specified new message content and reply markup are exactly "
                       "the same as a current content and reply markup of the message")
        for key in drop:
            message.pop(key, None)
        message.update(fields)
        message.pop("reply_markup", None)
        if inline:
            message["reply_markup"] = inline
        record["markup"] = markup
        message["edit_date"] = int(time.time())
        self._record_sent(method, message["chat"]["id"], params, files)
        return copy.deepcopy(message)

    def _edit_message_text(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        record = self._editable(params)
        if "text" not in record["message"]:
            raise _bad("there is no text in the message to edit")
        fields = self._formatted(params, "text", _MAX_TEXT, "message text is empty")
        return self._apply_edit("editMessageText", record, params, files, fields, ("entities",))

    def _edit_message_caption(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        record = self._editable(params)
        if "text" in record["message"]:
            raise _bad("there is no caption in the message to edit")
        fields = self._formatted(params, "caption", _MAX_CAPTION, None)
        return self._apply_edit("editMessageCaption", record, params, files, fields,
                                ("caption", "caption_entities"))

    def _edit_message_reply_markup(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        record = self._editable(params)
        return self._apply_edit("editMessageReplyMarkup", record, params, files, {}, ())

    def _delete_message(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        chat = self._chat(params.get("chat_id"))
        record = self._record(chat["id"], params.get("message_id"))
        if record is None:
            raise _bad("message to delete not found")
        record["deleted"] = True
        self._record_sent("deleteMessage", chat["id"], params, files)
        return True

    def _send_chat_action(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        chat = self._chat(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._record_sent("sendChatAction", chat["id"], params, files)
        return True

    def _send_media(self, kind: str, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        value = params.get(kind)
        upload = files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://"):])
            if upload is None:
                raise _bad(f"wrong {kind} attach name")
        if upload is not None:
            if len(upload["data"]) > self.max_upload_bytes:
                raise ApiError(413, "Request Entity Too Large")
            if not upload["data"]:
                raise _bad("file must be non-empty")
            if kind == "photo":
                stored = self._store_photo(upload["data"])
            else:
                mime = upload["mime_type"]
                if kind in ("animation", "video") and mime in (None, "application/octet-stream"):
                    mime = "video/mp4"
                stored = self._store(upload["data"], kind, upload["file_name"], mime,
                                     width=int(params.get("width") or 0), height=int(params.get("height") or 0),
                                     duration=int(params.get("duration") or 0))
        elif isinstance(value, str) and value:
            if value.startswith(("http://", "https://")):
                raise _bad("failed to get HTTP URL content")
            stored = self._files.get(value)
            if stored is None:
                raise _bad("wrong file identifier/HTTP URL specified")
            if (stored.kind == "photo") != (kind == "photo"):
                raise _bad(f"can't use file of type {stored.kind.title()} as {kind.title()}")
        else:
            raise _bad(f"there is no {kind} in the request")
        fields = self._formatted(params, "caption", _MAX_CAPTION, None)
        if kind == "photo":
            fields["photo"] = copy.deepcopy(stored.photo_sizes)
        else:
            fields[kind] = self._media_object(stored, as_kind=kind)
            if kind == "animation":
                fields["document"] = self._media_object(stored, as_kind="document")
        message = self._bot_message(chat, params, fields)
        self._record_sent(self._canonical[f"send{kind}"], chat["id"], params, files)
        return message

    def _answer_callback_query(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        query = self._callback_queries.get(str(params.get("callback_query_id") or ""))
        if query is None or query["answered"]:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query["answered"] = True
        self._record_sent("answerCallbackQuery", query["chat_id"], params, files)
        return True

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _set_my_commands(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("commands must be an array of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _delete_my_commands(self, params: JSONDict, files: dict[str, JSONDict]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _some_user(self, user_id: int) -> JSONDict:
        if user_id == self.bot_user["id"]:
            return dict(self.bot_user)
        return dict(self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"})

    def _member(self, chat_id: int, user_id: int) -> JSONDict:
        admins, owner = self._admins.get(chat_id, ([], None))
        user = self._some_user(user_id)
        if user_id == owner:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in admins:
            rights = (
                "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
                "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                "can_delete_stories", "can_pin_messages",
            )
            return {"status": "administrator", "user": user, "can_be_edited": False, "is_anonymous": False,
                    "can_promote_members": False, **{r: True for r in rights}}
        return {"status": "member", "user": user}

    def _get_chat_member(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("user_id is empty")
        if user_id not in self._users and user_id != self.bot_user["id"]:
            raise _bad("user not found")
        if chat["type"] == "private" and user_id not in (chat["id"], self.bot_user["id"]):
            raise _bad("user not found")
        return self._member(chat["id"], user_id)

    def _get_chat_administrators(self, params: JSONDict, files: dict[str, JSONDict]) -> list[JSONDict]:
        chat = self._chat(params.get("chat_id"))
        if chat["type"] == "private":
            raise _bad("there are no administrators in the private chat")
        admins, owner = self._admins.get(chat["id"], ([], None))
        ids = ([owner] if owner is not None else []) + [a for a in admins if a != owner]
        return [self._member(chat["id"], uid) for uid in ids]

    def _get_chat(self, params: JSONDict, files: dict[str, JSONDict]) -> JSONDict:
        chat = self._chat(params.get("chat_id"))
        return {
            **chat, "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                    "unique_gifts": False, "premium_subscription": False,
                                    "gifts_from_channels": False},
        }


__all__ = ["DOWNLOAD", "SECRET_HEADER", "ApiError", "FakeTelegram", "StoredFile"]
