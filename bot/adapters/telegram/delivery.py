"""Following a swap job in a chat: the status message edited as the job moves, the
"sending video" action kept alive, and the meme sent in the format the person chose
(`format_choice.py`).

Telegram shows a silent H.264 MP4 or a GIF sent with `sendAnimation` as a looping
animation; an MP4 with sound (a video template's) goes with `sendVideo`, since
`sendAnimation` is for files without sound. An animation is remembered by its `file_id`: a
meme already sent is re-sent by that id (no swap, no upload) when the same person picks the
same template for the same photo, in the same format, again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, TelegramError

from memeswap.bot.core.status import failure_line, fitted, follow_job, success_line
from memeswap.bot.services import BotServices
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob
from memeswap.inference.media.formats.registry import FORMATS, media_format
from memeswap.inference.media.sound import mp4_has_sound

log = logging.getLogger("memeswap.telegram")

ACTION_EVERY_S = 4.0  # a chat action shows for 5 s
REPORT_PREFIX = "report:"  # a Report button's callback data: the prefix and the job id (39 bytes)
MAX_MESSAGE = int(MessageLimit.MAX_TEXT_LENGTH)  # Telegram's limit on a message: 4096 characters
EXTENSIONS = {media_format(name).mime: name for name in FORMATS}  # a result's MIME type -> its file extension


@dataclass(frozen=True)
class SentMeme:
    """Who asked for which template (its ref: the same name can be another template
    elsewhere) with which photo, and where: the key of a reusable `file_id`. A meme is only
    re-sent in the place it was made for."""

    user_id: int
    photo_unique_id: str
    template_ref: str
    scope_key: str
    format: str


@dataclass(frozen=True)
class Sent:
    file_id: str
    job_id: str  # the job that made it: what its Report button reports


class SentMemes:
    """The `file_id`s of memes already sent, most recent kept (bounded); forgotten per user."""

    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[SentMeme, Sent] = OrderedDict()

    def get(self, key: SentMeme) -> Sent | None:
        sent = self._ids.get(key)
        if sent is not None:
            self._ids.move_to_end(key)
        return sent

    def put(self, key: SentMeme, sent: Sent) -> None:
        self._ids[key] = sent
        self._ids.move_to_end(key)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def forget_user(self, user_id: int) -> None:
        for key in [k for k in self._ids if k.user_id == user_id]:
            del self._ids[key]


def report_button(job_id: str) -> InlineKeyboardMarkup:
    """The "Report" button under a meme; its press comes back as `report:<job id>`."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("🚩 Report", callback_data=f"{REPORT_PREFIX}{job_id}")]])


def reply_address(chat_id: int, status_message_id: int) -> str:
    """`SwapJob.reply_to`: where the meme goes, should another shard process deliver it."""
    return f"telegram:{chat_id}:{status_message_id}"


def parse_reply_address(reply_to: str | None) -> tuple[int, int] | None:
    parts = (reply_to or "").split(":")
    if len(parts) != 3 or parts[0] != "telegram":
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


class MemeDelivery:
    def __init__(self, services: BotServices, sent: SentMemes) -> None:
        self.services = services
        self.sent = sent

    async def follow(self, job: SwapJob, status: Message, key: SentMeme | None) -> None:
        """Edit `status` as the job moves and send the meme in reply to it when it is done."""
        bot = status.get_bot()

        async def deliver(event: Succeeded) -> None:
            try:
                await self._send(bot, status, job, event, key)
            except TelegramError as error:
                log.warning("job %s: meme not sent: %s", job.job_id, error)
                await edit_status(status, "⚠️ Your meme is ready but Telegram would not take it. Please try again.")
                return
            await edit_status(status, success_line(event, "✅ Done!"))

        keep_acting = asyncio.create_task(_keep_chat_action(bot, status.chat_id))
        try:
            await follow_job(self.services.swaps.follow(job), lambda line: edit_status(status, line), deliver)
        finally:
            keep_acting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keep_acting

    async def deliver_unfollowed(self, bot: Bot, job: SwapJob, event: Succeeded | Failed) -> None:
        """A final nobody here was following (the shard restarted mid-job): post it where
        the job said."""
        address = parse_reply_address(job.reply_to)
        if address is None:
            return
        chat_id, status_id = address
        if isinstance(event, Succeeded):
            data = await self.services.result(event)
            await send_meme(bot, chat_id, data, event.mime, status_id, report_button(job.job_id))
            await self.services.discard_result(event)
            text = success_line(event, "✅ Done!")
        else:
            text = f"⚠️ {failure_line(event)}"
        with contextlib.suppress(TelegramError):
            await bot.edit_message_text(text, chat_id=chat_id, message_id=status_id)

    async def _send(self, bot: Bot, status: Message, job: SwapJob, event: Succeeded, key: SentMeme | None) -> None:
        data = await self.services.result(event)
        try:
            sent = await send_meme(bot, status.chat_id, data, event.mime, status.message_id,
                                   report_button(job.job_id))
        finally:
            await self.services.discard_result(event)
        if key is not None and sent.animation is not None:
            self.sent.put(key, Sent(sent.animation.file_id, job.job_id))


async def send_meme(bot: Bot, chat_id: int, data: bytes, mime: str, reply_to: int,
                    reply_markup: InlineKeyboardMarkup) -> Message:
    """The meme as an animation (GIF, or MP4 without sound) or, an MP4 with sound, as a video."""
    name = f"meme.{EXTENSIONS.get(mime, 'mp4')}"
    if mime == "video/mp4" and mp4_has_sound(data):
        return await bot.send_video(chat_id, InputFile(data, filename=name), supports_streaming=True,
                                    reply_to_message_id=reply_to, allow_sending_without_reply=True,
                                    reply_markup=reply_markup)
    return await bot.send_animation(chat_id, InputFile(data, filename=name), reply_to_message_id=reply_to,
                                    allow_sending_without_reply=True, reply_markup=reply_markup)


async def edit_status(message: Message, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit a status message; one that was deleted or is unchanged is not an error."""
    try:
        await message.edit_text(fitted(text, MAX_MESSAGE), reply_markup=reply_markup)
    except BadRequest as error:
        if "not modified" not in error.message.lower():
            log.info("status message %s not edited: %s", message.message_id, error.message)


async def _keep_chat_action(bot: Bot, chat_id: int) -> None:
    while True:
        with contextlib.suppress(TelegramError):
            await bot.send_chat_action(chat_id, ChatAction.UPLOAD_VIDEO)
        await asyncio.sleep(ACTION_EVERY_S)
