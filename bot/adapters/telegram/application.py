"""The python-telegram-bot `Application` of memeswap: handlers wired to the conversation,
Telegram's flood limits and `RetryAfter` honoured by PTB's rate limiter, and the command
list registered with `setMyCommands` at start (best effort: the bot works without it).

Every message in a private chat gets an answer (what the bot cannot use gets a pointer to
/help); in a group, where a bare /command may be another bot's, only commands naming this
bot (/foo@this_bot) get the pointer, and other messages are left alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import Bot, BotCommand, Message, MessageEntity, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    Updater,
    filters,
)

from memeswap.bot.adapters.telegram import format_choice, gif_picker
from memeswap.bot.adapters.telegram.delivery import REPORT_PREFIX
from memeswap.bot.adapters.telegram.downloads import clip_in
from memeswap.bot.adapters.telegram.handlers import CLIP_BUTTON, OUR_FAULT, TelegramConversation
from memeswap.bot.services import BotServices
from memeswap.bot.settings import Settings
from memeswap.inference.errors import InputError
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob

log = logging.getLogger("memeswap.telegram")

COMMANDS = [
    BotCommand("start", "What I do and how to use me"),
    BotCommand("help", "How to use me"),
    BotCommand("templates", "Pick a template for your saved face"),
    BotCommand("face", "Reply to a photo with it to save your face (/face NAME: under a name)"),
    BotCommand("faces", "The faces you saved"),
    BotCommand("removeface", "Delete a saved face: /removeface NAME"),
    BotCommand("addtemplate", "Add a GIF or video as a template here"),
    BotCommand("removetemplate", "Remove a template added here"),
    BotCommand("format", "Get memes as MP4 or GIF"),
    BotCommand("forget", "Erase everything I keep about you"),
]
GIF_COMMAND = BotCommand("gif", "Find a GIF and swap your saved face into it")  # with GIF search on
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]  # what the handlers take, polled or posted
RETRIES_AFTER_FLOOD = 3  # RetryAfter answers waited out and retried, per request

_PRIVATE = filters.ChatType.PRIVATE
_IMAGE = filters.PHOTO | filters.Document.IMAGE


def _caption_command(name: str) -> filters.BaseFilter:
    return filters.CaptionRegex(rf"^/{name}(@\w+)?(\s|$)")


class _CommandNamingThisBot(filters.MessageFilter):
    """A text message starting with /command@this_bot."""

    def filter(self, message: Message) -> bool:
        entity = message.entities[0] if message.text and message.entities else None
        if entity is None or entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
            return False
        named = message.parse_entity(entity).partition("@")[2]
        return named.lower() == (message.get_bot().username or "").lower()


class _Clip(filters.MessageFilter):
    """A message holding a GIF or video (`clip_in`'s rule)."""

    def filter(self, message: Message) -> bool:
        return clip_in(message) is not None


class TelegramAdapter:
    """The Telegram side of `memeswap serve`: an `Application` over the shared services."""

    platform = "telegram"

    def __init__(self, services: BotServices, poll_timeout_s: int = 30) -> None:
        settings = services.settings
        if settings.telegram_token is None:
            raise InputError("set MEMESWAP_TELEGRAM_TOKEN to the token BotFather gave you", code="settings")
        self.poll_timeout_s = poll_timeout_s
        self.conversation = TelegramConversation(services)
        self.application = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(settings.telegram_api_url)
            .base_file_url(settings.telegram_file_url)
            .rate_limiter(AIORateLimiter(max_retries=RETRIES_AFTER_FLOOD))
            .concurrent_updates(settings.telegram_concurrent_updates)
            .defaults(Defaults(do_quote=True))  # a reply quotes what it answers, in private chats too
            .build()
        )
        add_handlers(self.application, self.conversation)

    @staticmethod
    async def check_token(settings: Settings) -> None:
        """Ask Telegram who we are before anything heavy loads: a missing, rejected or
        unreachable token is one line."""
        if settings.telegram_token is None:
            raise InputError("set MEMESWAP_TELEGRAM_TOKEN to the token BotFather gave you", code="settings")
        bot = Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_url,
                  base_file_url=settings.telegram_file_url)
        try:
            async with bot:
                pass
        except InvalidToken:
            raise _rejected() from None
        except NetworkError as error:
            raise InputError(f"cannot reach Telegram: {error.message}", code="settings") from None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TelegramAdapter]:
        """Log in, register the commands and take updates (by webhook when
        MEMESWAP_TELEGRAM_WEBHOOK_URL is set, else by long polling) until the block ends.

        A token Telegram rejects is one `InputError` line, before anything else starts.
        """
        application = self.application
        updater = application.updater
        assert updater is not None, "ApplicationBuilder makes an Updater unless told not to"
        try:
            await application.initialize()
        except InvalidToken:
            raise _rejected() from None
        try:
            await _set_commands(application.bot, commands_for(self.conversation.services))
            await application.start()
            try:
                await _take_updates(updater, self.conversation.services.settings, self.poll_timeout_s)
                try:
                    yield self
                finally:
                    await updater.stop()  # the webhook server too; the webhook stays set for other replicas
            finally:
                await application.stop()
        finally:
            await application.shutdown()

    def stopped(self) -> asyncio.Future | None:
        """None: python-telegram-bot retries a failing long poll by itself, and its webhook
        server takes updates, for as long as they run."""
        return None

    async def deliver_unfollowed(self, job: SwapJob, event: Succeeded | Failed) -> bool:
        """Post the final event of a job this process was not following (it restarted
        mid-job); False when the job was not Telegram's."""
        if not (job.reply_to or "").startswith("telegram:"):
            return False
        await self.conversation.delivery.deliver_unfollowed(self.application.bot, job, event)
        return True


async def _take_updates(updater: Updater, settings: Settings, poll_timeout_s: int) -> None:
    """Start PTB's webhook server and register its URL with Telegram (setWebhook) when
    MEMESWAP_TELEGRAM_WEBHOOK_URL is set, else long-poll getUpdates (which deletes any webhook).

    The webhook server answers 403 to a POST without MEMESWAP_TELEGRAM_WEBHOOK_SECRET in
    X-Telegram-Bot-Api-Secret-Token. A URL Telegram refuses, or a port that cannot be had, is
    one `InputError` line."""
    username = updater.bot.username
    if settings.telegram_webhook_url is None:
        await updater.start_polling(timeout=poll_timeout_s, poll_interval=0.0, allowed_updates=ALLOWED_UPDATES)
        log.info("telegram: polling as @%s", username)
        return
    assert settings.telegram_webhook_secret is not None, "Settings requires it with the URL"
    listen, port = settings.telegram_webhook_listen, settings.telegram_webhook_port
    path = settings.telegram_webhook_path
    try:
        await updater.start_webhook(listen=listen, port=port, url_path=path, webhook_url=settings.telegram_webhook_url,
                                    secret_token=settings.telegram_webhook_secret.get_secret_value(),
                                    allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    except BadRequest as error:
        raise InputError(f"Telegram refused MEMESWAP_TELEGRAM_WEBHOOK_URL: {error.message}", code="settings") from None
    except OSError as error:
        reason = (error.strerror or str(error)).lower()  # "address already in use", "name or service not known"
        raise InputError(f"cannot take Telegram's updates on {listen}:{port} (MEMESWAP_TELEGRAM_WEBHOOK_LISTEN, "
                         f"MEMESWAP_TELEGRAM_WEBHOOK_PORT): {reason}", code="settings") from None
    log.info("telegram: webhook on %s:%d %s as @%s", listen, port, path, username)


def commands_for(services: BotServices) -> list[BotCommand]:
    """The command list, with /gif when GIF search is on."""
    return COMMANDS + ([GIF_COMMAND] if services.gif_search is not None else [])


async def _set_commands(bot: Bot, commands: list[BotCommand]) -> None:
    """Register the command list Telegram suggests; a failure is a warning, not a reason not to serve."""
    try:
        await bot.set_my_commands(commands)
    except TelegramError as error:
        log.warning("telegram: the command list was not registered (%s: %s); serving without it",
                    type(error).__name__, error.message)


def _rejected() -> InputError:
    return InputError("Telegram rejected MEMESWAP_TELEGRAM_TOKEN; copy the token BotFather gave you "
                      "(it looks like 123456789:AA...)", code="settings")


def add_handlers(application: Application, talk: TelegramConversation) -> None:
    application.add_handler(CommandHandler(["start", "help"], talk.help))
    application.add_handler(CommandHandler("templates", talk.templates))
    application.add_handler(CommandHandler("swap", talk.selfie))
    application.add_handler(CommandHandler("face", talk.save_face))
    application.add_handler(CommandHandler("faces", talk.list_faces))
    application.add_handler(CommandHandler("removeface", talk.remove_face))
    application.add_handler(CommandHandler("forget", talk.forget))
    application.add_handler(CommandHandler("format", talk.format_command))
    application.add_handler(CommandHandler("addtemplate", talk.add_template))
    application.add_handler(CommandHandler("removetemplate", talk.remove_template))
    if talk.services.gif_search is not None:  # else /gif is a command this bot does not know
        application.add_handler(CommandHandler("gif", talk.search_gifs))
        application.add_handler(CallbackQueryHandler(talk.pick_gif, pattern=gif_picker.PATTERN))
    application.add_handler(CommandHandler("reports", talk.open_reports))
    application.add_handler(CommandHandler("resolve", talk.resolve_report))
    application.add_handler(MessageHandler(_caption_command("addtemplate"), talk.add_template))
    application.add_handler(MessageHandler(_IMAGE & _caption_command("face"), talk.save_face))
    application.add_handler(MessageHandler(_IMAGE & (_PRIVATE | _caption_command("swap")), talk.selfie))
    application.add_handler(MessageHandler(_PRIVATE & _Clip(), talk.offer_clip))
    application.add_handler(MessageHandler(_PRIVATE & (filters.Document.ALL | filters.VIDEO), talk.not_a_selfie))
    application.add_handler(MessageHandler((_PRIVATE & ~filters.StatusUpdate.ALL) | _CommandNamingThisBot(),
                                           talk.chatter))
    application.add_handler(CallbackQueryHandler(talk.swap_into_clip, pattern=rf"^{CLIP_BUTTON.partition(':')[0]}:"))
    application.add_handler(CallbackQueryHandler(talk.report, pattern=f"^{REPORT_PREFIX}"))
    application.add_handler(CallbackQueryHandler(talk.choose_format, pattern=f"^{format_choice.PREFIX}"))
    application.add_handler(CallbackQueryHandler(talk.pick))
    application.add_error_handler(_on_error)


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Our bug, not the user's: log it with its traceback, tell the person in one line (a tap
    not answered yet is answered with it), go on."""
    log.error("update failed: %s", context.error, exc_info=context.error)
    if not isinstance(update, Update):
        return
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(OUR_FAULT, show_alert=True)
            return
        except TelegramError:  # answered before the failure: say it in the chat
            pass
    if update.effective_chat is not None:
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(update.effective_chat.id, OUR_FAULT)
