"""The Telegram conversation, one handler per step; the work is `bot.core`'s.

A selfie (photo, or image sent as a file) gets a keyboard of templates in reply; tapping
one swaps that photo's face in. The keyboard replies to the photo, so a tap finds the photo
through `reply_to_message` and nothing is kept between the two steps. A keyboard that does
not reply to a photo (from /templates) uses the person's saved face.

In groups the bot hears commands only (privacy mode), so a selfie there is a photo with the
caption /swap, or /swap in reply to a photo.

Once a status message is posted ("⏳ Getting ready…"), every way the request can end is said
in that message: a refusal's line, a download Telegram did not hand over, or our own bug.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import ContextTypes

from memeswap.bot.adapters.telegram import format_choice, gif_picker, picker
from memeswap.bot.adapters.telegram.delivery import (
    MAX_MESSAGE,
    REPORT_PREFIX,
    MemeDelivery,
    SentMeme,
    SentMemes,
    edit_status,
    reply_address,
    report_button,
)
from memeswap.bot.adapters.telegram.downloads import NOT_AN_IMAGE, Attachment, clip_in, download, image_in
from memeswap.bot.core.face_maps import parse_face_map
from memeswap.bot.core.faces import DEFAULT_FACE, face_name
from memeswap.bot.core.gif_search import shown
from memeswap.bot.core.reports import THANKS, UnknownMemeError
from memeswap.bot.core.requesters import NotAllowedError, Requester, Scope
from memeswap.bot.core.status import fitted, refusal_line
from memeswap.bot.core.uploads import staged_upload, too_big
from memeswap.bot.core.wording import CONSENT, PRIVACY, WHAT_IT_DOES
from memeswap.bot.services import BotServices
from memeswap.inference.errors import InputError
from memeswap.inference.media.formats.registry import media_format

log = logging.getLogger("memeswap.telegram")

Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[["TelegramConversation", Update, Context], Coroutine[Any, Any, None]]

HELP = f"""{WHAT_IT_DOES}

1. Send me a selfie (a photo, or the image as a file for full quality).
2. Tap a template.
3. Get your meme back in a few seconds.

/templates – pick a template for your saved face
/format – get memes as MP4 (the default) or GIF
Send or forward a GIF or video – swap your saved face into it
/face [NAME] – reply to a photo with it to save your face (as “me”, or NAME)
/faces – the faces you saved; /removeface NAME deletes one
/swap TEMPLATE FACES – saved faces on a template's faces in order: /swap duo me,_,ana (_ keeps one)
/addtemplate NAME – as the caption of a GIF or video (or in reply to one): add it as a template here
/removetemplate NAME – remove one of this chat's templates
/reports, /resolve NUMBER hide|keep – templates people reported here (admins)
/forget – erase everything I keep about you

In groups, send the photo with the caption /swap. Only group admins add or remove templates.

{CONSENT}
{PRIVACY}"""

FACE_USAGE = "Reply /face to a photo of your face to save it (/face NAME to save it under a name)."
ADD_USAGE = "Send a GIF or video with the caption /addtemplate NAME, or reply to one with it."
ADD_NOT_A_CLIP = "That file isn't a GIF or a video. Send a GIF or video with the caption /addtemplate NAME."
MAX_ALERT = 200  # Telegram's limit on a callback alert (on a message: delivery.MAX_MESSAGE)
GIF_USAGE = "Say what to look for, like /gif dancing cat"
GIF_HELP = "\n\nGIF search is on: /gif WORDS finds GIFs to swap your saved face into."
MAX_CAPTION = 1024  # on a photo
POINTER = "Send me a selfie and I'll offer you meme templates. /help"
RESOLVE_USAGE = "/resolve NUMBER hide|keep keeps a reported template hidden here, or shows it again."
REPORT_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() is true for "²"
OUR_FAULT = "⚠️ Something went wrong on my side. Please try again."
# The button under a GIF or video sent without a command; the clip is the message the
# button's message replies to, so the button's data carries nothing else.
CLIP_BUTTON = "clip:swap"
CLIP_EXPIRED = "That button has expired: I can't see the clip any more. Please send it again."
CLIP_NO_FACE = "Save your face first: reply /face to a selfie of yours, then tap the button again."


def replies_to_mistakes(handler: Handler) -> Handler:
    """A person's mistake (an `InputError`) is one line in reply, never a crash."""

    @functools.wraps(handler)
    async def wrapped(self: TelegramConversation, update: Update, context: Context) -> None:
        try:
            await handler(self, update, context)
        except InputError as error:
            line = f"⚠️ {refusal_line(error)}"
            if update.callback_query is not None:
                await update.callback_query.answer(fitted(line, MAX_ALERT), show_alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(fitted(line, MAX_MESSAGE))

    return wrapped


@contextlib.asynccontextmanager
async def ending_in(status: Message) -> AsyncIterator[None]:
    """Whatever fails in the block ends in `status`: a refusal as its line, anything else
    (our bug) as `OUR_FAULT`, logged with its traceback. Nothing escapes the block."""
    try:
        yield
    except InputError as error:
        await edit_status(status, f"⚠️ {refusal_line(error)}")
    except Exception as error:
        log.exception("request behind status message %s failed: %s", status.message_id, error)
        await edit_status(status, OUR_FAULT)


class TelegramConversation:
    def __init__(self, services: BotServices, sent: SentMemes | None = None,
                 formats: format_choice.FormatChoices | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.sent = sent or SentMemes()
        self.formats = formats or format_choice.FormatChoices()
        self.delivery = MemeDelivery(services, self.sent)

    async def help(self, update: Update, context: Context) -> None:
        searching = self.services.gif_search is not None
        await message_of(update).reply_text(HELP + GIF_HELP if searching else HELP)

    @replies_to_mistakes
    async def selfie(self, update: Update, context: Context) -> None:
        """A photo arrived (or /swap in reply to one): check it, then offer the templates."""
        found = found_in(message_of(update), image_in)
        if found is None and len(context.args or []) == 2:
            await self._mapped_swap(update, *(context.args or []))
            return
        if found is None:
            await self.templates(update, context)
            return
        photo_message, attachment = found
        requester = await self._requester(update)
        photo = await download(photo_message, attachment, self.settings.telegram_download_bytes)
        await self.services.faces.check(requester, photo)
        visible = await self.services.templates.visible(requester)
        await photo_message.reply_text(
            "Got your face! Now pick a template:",
            reply_markup=picker.keyboard(visible, "photo", 0, self.settings.telegram_templates_per_page))

    @replies_to_mistakes
    async def offer_clip(self, update: Update, context: Context) -> None:
        """A GIF or video sent (or forwarded) without a command: a button to swap the saved
        face into it. One too big to fetch is refused now, not after the tap."""
        message = message_of(update)
        attachment = clip_in(message)
        assert attachment is not None, "the clip filter found one"
        limit = self._clip_limit()
        if attachment.size is not None and attachment.size > limit:
            raise too_big(limit, attachment.size)
        button = InlineKeyboardButton("Swap my face into this", callback_data=CLIP_BUTTON)
        await message.reply_text("Want your face in this?", reply_markup=InlineKeyboardMarkup([[button]]))

    @replies_to_mistakes
    async def swap_into_clip(self, update: Update, context: Context) -> None:
        """The clip button: the clip (the message the button replies to) as a one-off
        template, screened as a new template is, with the saved face.

        The data comes from the client: anything but the button's own is answered and
        dropped; a button whose clip Telegram no longer shows is expired."""
        query = query_of(update)
        if query.data != CLIP_BUTTON:
            await query.answer()
            return
        message = query.message
        clip_message = message.reply_to_message if isinstance(message, Message) else None
        attachment = clip_in(clip_message)
        if attachment is None or clip_message is None or not isinstance(message, Message):
            await query.answer(CLIP_EXPIRED, show_alert=True)
            return
        limit = self._clip_limit()
        if attachment.size is not None and attachment.size > limit:
            raise too_big(limit, attachment.size)
        requester = await self._requester(update)
        try:
            selfie = await self.services.faces.load(requester)  # before a download of up to 20 MB
        except InputError as error:
            if error.code == "no_saved_face":
                raise InputError(CLIP_NO_FACE, code="usage") from None
            raise
        await query.answer("Making your meme…")
        status = await message.reply_text("⏳ Getting ready…")
        async with ending_in(status):
            data = await download(clip_message, attachment, limit)
            with staged_upload(data, attachment.declared_type, "memeswap-clip-") as path:
                job = await self.services.swaps.start_one_off(
                    requester, path, selfie=selfie, format=self.formats.get(query.from_user.id),
                    max_bytes=self.settings.telegram_upload_bytes,
                    reply_to=reply_address(status.chat_id, status.message_id))
            await self.delivery.follow(job, status, None)

    def _clip_limit(self) -> int:
        return min(self.settings.telegram_download_bytes, self.settings.max_template_bytes)

    async def _mapped_swap(self, update: Update, template: str, faces: str) -> None:
        """/swap TEMPLATE FACES (e.g. /swap duo me,_,ana): saved faces onto the template's
        faces, in the order previews number them."""
        face_map = parse_face_map(faces)
        requester = await self._requester(update)
        status = await message_of(update).reply_text("⏳ Getting ready…")
        async with ending_in(status):
            job = await self.services.swaps.start(
                requester, template.lower(), format=self.formats.get(user_of(update).id),
                max_bytes=self.settings.telegram_upload_bytes,
                reply_to=reply_address(status.chat_id, status.message_id), face_map=face_map)
            await self.delivery.follow(job, status, None)

    async def not_a_selfie(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(NOT_AN_IMAGE)

    async def chatter(self, update: Update, context: Context) -> None:
        """Anything else in a private chat (text, a sticker, a voice message, an unknown
        command), or a command naming this bot that it does not know: a pointer to /help."""
        await message_of(update).reply_text(POINTER)

    @replies_to_mistakes
    async def pick(self, update: Update, context: Context) -> None:
        """A template button: answer at once, then swap and follow the job in a status message.

        The data comes from the client: what this bot did not make is answered and dropped,
        and the template is resolved (a real one, here) before anything is downloaded."""
        query = query_of(update)
        choice = picker.parse(query.data)
        message = query.message
        if choice is None or not isinstance(message, Message):  # an old message comes without its content
            await query.answer()
            return
        if choice.page is not None:
            await self._turn_page(update, query, message, choice.source, choice.page)
            return
        template = choice.template
        assert template is not None, "a choice that turns no page picks a template"
        photo_message = message.reply_to_message
        attachment = image_in(photo_message) if choice.source == "photo" else None
        if choice.source == "photo":
            if attachment is None:  # Telegram leaves out what a message replied to once it is old
                await query.answer("I can't see that photo any more. Please send it again.", show_alert=True)
                return
            assert photo_message is not None, "image_in found the photo in it"
            if photo_message.from_user and photo_message.from_user.id != query.from_user.id:
                await query.answer("That's someone else's photo. Send your own selfie to make yours.",
                                   show_alert=True)
                return
        requester = await self._requester(update)
        resolved = await self.services.templates.resolve(requester, template)
        output_format = self.formats.get(query.from_user.id)
        key = (SentMeme(query.from_user.id, attachment.file_unique_id, resolved.ref, requester.scope.key,
                        output_format) if attachment else None)
        if key is not None and (sent := self.sent.get(key)) is not None:
            # Posted here before; the template's faces meet this place's list as it is now.
            await self.services.templates.check_protected(requester, requester.scope, resolved.ref)
            await query.answer("Here it is again!")
            await message.reply_animation(sent.file_id, reply_markup=report_button(sent.job_id))
            return
        await query.answer("Making your meme…")
        status = await message.reply_text("⏳ Getting ready…")
        async with ending_in(status):
            selfie = None
            if photo_message is not None and attachment is not None:
                selfie = await download(photo_message, attachment, self.settings.telegram_download_bytes)
            job = await self.services.swaps.start(
                requester, template, selfie=selfie, format=output_format,
                max_bytes=self.settings.telegram_upload_bytes,
                reply_to=reply_address(status.chat_id, status.message_id))
            await self.delivery.follow(job, status, key)

    async def format_command(self, update: Update, context: Context) -> None:
        """/format: the file type memes come as, with a button for each."""
        current = self.formats.get(user_of(update).id)
        await message_of(update).reply_text(f"Your memes come as {format_choice.describe(current)}. Tap to change:",
                                            reply_markup=format_choice.keyboard(current))

    async def choose_format(self, update: Update, context: Context) -> None:
        """A /format button: remember the choice and tick it."""
        query = query_of(update)
        chosen = format_choice.parse(query.data)
        if chosen is None:
            await query.answer()
            return
        self.formats.set(query.from_user.id, chosen)
        await query.answer(f"Your memes now come as {media_format(chosen).title}.")
        if isinstance(query.message, Message):
            await edit_status(query.message, f"Your memes come as {format_choice.describe(chosen)}. Tap to change:",
                              format_choice.keyboard(chosen))

    @replies_to_mistakes
    async def search_gifs(self, update: Update, context: Context) -> None:
        """/gif WORDS: a few GIFs as buttons; tapping one swaps the saved face into it."""
        gif_search = self.services.gif_search
        assert gif_search is not None, "/gif is handled only when GIF search is on"
        words = " ".join(context.args or [])
        if not words.strip():
            raise InputError(GIF_USAGE, code="usage")
        results = await gif_search.search(words)
        if not results:
            raise InputError(f"no GIF found for {shown(words)}; try other words", code="no_gif")
        await message_of(update).reply_text("Tap a GIF to swap your saved face into it:",
                                            reply_markup=gif_picker.keyboard(results))

    @replies_to_mistakes
    async def pick_gif(self, update: Update, context: Context) -> None:
        """A GIF button: answer at once, then swap the saved face into that GIF (looked up
        again by its id; the data comes from the client) and follow the job."""
        query = query_of(update)
        chosen = gif_picker.parse(query.data)
        message = query.message
        gif_search = self.services.gif_search
        if chosen is None or gif_search is None or not isinstance(message, Message):
            await query.answer()
            return
        requester = await self._requester(update)
        await query.answer("Making your meme…")
        status = await message.reply_text("⏳ Getting ready…")
        async with ending_in(status):
            job = await gif_search.start_swap(requester, chosen, format=self.formats.get(query.from_user.id),
                                              max_bytes=self.settings.telegram_upload_bytes,
                                              reply_to=reply_address(status.chat_id, status.message_id))
            await self.delivery.follow(job, status, None)

    async def report(self, update: Update, context: Context) -> None:
        """The Report button under a meme. Its data comes from the client: `report` checks
        that it names a job this bot started, and an answer says so in one line either way."""
        query = query_of(update)
        if not (query.data or "").startswith(REPORT_PREFIX):  # a query without data reaches every pattern
            await query.answer()
            return
        job_id = (query.data or "").removeprefix(REPORT_PREFIX)
        try:
            await self.services.reports.report(await self._requester(update), job_id)
        except UnknownMemeError as error:
            await query.answer(str(error))
            return
        await query.answer(THANKS)

    @replies_to_mistakes
    async def open_reports(self, update: Update, context: Context) -> None:
        """/reports: the templates people reported here that nobody decided on (admins only)."""
        requester = await self._requester(update, need_admin=True)
        if not requester.is_scope_admin:
            raise NotAllowedError("only an admin of this group can see its reports")
        cases = await self.services.reports.open_cases(requester.scope.key)
        lines = [f"#{case.report_id} “{case.template.rpartition('/')[2]}”: {case.reports} report"
                 f"{'s' if case.reports != 1 else ''}{' (hidden here)' if case.hidden else ''}" for case in cases]
        await message_of(update).reply_text("\n".join([*lines, RESOLVE_USAGE]) if lines else "No open reports here.")

    @replies_to_mistakes
    async def resolve_report(self, update: Update, context: Context) -> None:
        """/resolve NUMBER hide|keep: an admin's decision on a reported template here."""
        args = context.args or []
        if len(args) != 2 or not REPORT_NUMBER.fullmatch(args[0]) or args[1] not in ("hide", "keep"):
            raise InputError(RESOLVE_USAGE, code="usage")
        requester = await self._requester(update, need_admin=True)
        done = await self.services.reports.resolve(requester, int(args[0]), "hide" if args[1] == "hide" else "keep")
        name = done.template.rpartition("/")[2]
        await message_of(update).reply_text(f"“{name}” stays hidden here." if done.decision == "hide" else
                                            f"“{name}” is shown here again.")

    @replies_to_mistakes
    async def templates(self, update: Update, context: Context) -> None:
        """/templates: what this chat can use, as buttons for the saved face."""
        requester = await self._requester(update)
        visible = await self.services.templates.visible(requester)
        own = [t.name for t in visible if t.added_here]
        lines = [f"{len(picker.by_name(visible))} templates here" +
                 (f", {len(own)} of them added here (★): {', '.join(own)}." if own else ".")]
        if not await self.services.faces.list(requester):
            lines.append("You have no saved face yet: send me a selfie first, or reply /face to one to save it.")
        else:
            lines.append("Tap one to use your saved face, or send a new selfie.")
        markup = picker.keyboard(visible, "face", 0, self.settings.telegram_templates_per_page)
        try:
            sheet = await self.services.previews.sheet(requester.user_key, picker.by_name(visible))
        except InputError as error:  # busy, or past its deadline: the buttons alone still work
            log.info("/templates without its preview sheet: %s", error)
            await message_of(update).reply_text("\n".join(lines), reply_markup=markup)
            return
        lines.append(f"{sheet.summary} The sheet numbers them in the buttons' order.")
        await message_of(update).reply_photo(sheet.data, caption=fitted("\n".join(lines), MAX_CAPTION),
                                             filename=sheet.filename, reply_markup=markup)

    @replies_to_mistakes
    async def save_face(self, update: Update, context: Context) -> None:
        """/face [NAME] in reply to a photo (or as its caption): keep that face for later
        swaps, under NAME (`me` when none is given)."""
        message = message_of(update)
        words = (message.text or message.caption or "").split()
        if len(words) > 2:
            raise InputError(FACE_USAGE, code="usage")
        name = face_name(words[1]) if len(words) == 2 else DEFAULT_FACE  # a bad name: refused before a download
        found = found_in(message, image_in)
        if found is None:
            raise InputError(FACE_USAGE, code="usage")
        photo_message, attachment = found
        if photo_message.from_user and photo_message.from_user.id != user_of(update).id:
            raise InputError("you can only save your own face; reply /face to a photo you sent", code="not_allowed")
        requester = await self._requester(update)
        photo = await download(photo_message, attachment, self.settings.telegram_download_bytes)
        saved = await self.services.faces.save(requester, photo, name)
        await message.reply_text(f"Saved your face as “{saved.name}”. Now /templates makes a meme without a new "
                                 "photo; /faces lists your faces; /forget erases them.")

    @replies_to_mistakes
    async def list_faces(self, update: Update, context: Context) -> None:
        """/faces: the names of the faces the person saved."""
        saved = await self.services.faces.list(await self._requester(update))
        if not saved:
            await message_of(update).reply_text("You have no saved face yet: reply /face to a selfie to save it.")
            return
        most = self.settings.saved_faces_per_user
        await message_of(update).reply_text(
            f"Your saved faces ({len(saved)} of {most}): {', '.join(face.name for face in saved)}.\n"
            f"/face NAME in reply to a photo saves another; /removeface NAME deletes one.")

    @replies_to_mistakes
    async def remove_face(self, update: Update, context: Context) -> None:
        """/removeface NAME: delete one saved face."""
        args = context.args or []
        if len(args) != 1:
            raise InputError("usage: /removeface NAME (/faces lists them)", code="usage")
        name = face_name(args[0])
        gone = await self.services.faces.delete(await self._requester(update), name)
        await message_of(update).reply_text(f"Deleted your saved face “{name}”." if gone else
                                            f"You have no saved face named “{name}”. /faces lists them.")

    @replies_to_mistakes
    async def forget(self, update: Update, context: Context) -> None:
        requester = await self._requester(update)
        gone = await self.services.forget(requester)
        self.sent.forget_user(user_of(update).id)
        self.formats.forget_user(user_of(update).id)
        again = " Send a selfie any time to start again." if gone.found else ""
        await message_of(update).reply_text(gone.line() + again)

    @replies_to_mistakes
    async def add_template(self, update: Update, context: Context) -> None:
        """/addtemplate NAME as the caption of a clip, or in reply to one."""
        message = message_of(update)
        words = (message.text or message.caption or "").split()
        found = found_in(message, clip_in)
        if found is None and (has_a_file(message) or has_a_file(message.reply_to_message)):
            raise InputError(ADD_NOT_A_CLIP, code="usage")
        if len(words) != 2 or found is None:
            raise InputError(ADD_USAGE, code="usage")
        clip_message, attachment = found
        requester = await self._requester(update, need_admin=True)
        await self.services.templates.check_can_add(requester, words[1].lower(), attachment.size)  # before download
        limit = min(self.settings.telegram_download_bytes, self.settings.max_template_bytes)
        status = await message.reply_text("⏳ Adding the template…")
        async with ending_in(status):
            data = await download(clip_message, attachment, limit)
            with staged_upload(data, attachment.declared_type, "memeswap-upload-") as media:
                info = await self.services.templates.add(requester, media, words[1].lower())
            where = "this chat" if requester.scope.kind == "chat" else "you"
            await edit_status(status, f"✅ Added “{info.name}” for {where}. "
                                      "Send a selfie (or /templates) to use it.")

    @replies_to_mistakes
    async def remove_template(self, update: Update, context: Context) -> None:
        args = context.args or []
        if len(args) != 1:
            raise InputError("usage: /removetemplate NAME", code="usage")
        requester = await self._requester(update, need_admin=True)
        await self.services.templates.remove(requester, args[0].lower())
        await message_of(update).reply_text(f"Removed “{args[0].lower()}”.")

    async def _turn_page(self, update: Update, query: CallbackQuery, message: Message, source: str,
                         page: int) -> None:
        visible = await self.services.templates.visible(await self._requester(update))
        await query.answer()
        markup = picker.keyboard(visible, source, page, self.settings.telegram_templates_per_page)
        if markup != message.reply_markup:
            await query.edit_message_reply_markup(markup)

    async def _requester(self, update: Update, need_admin: bool = False) -> Requester:
        """Who asks, and where: a private chat is the person's own space; in a group the
        chat's, with Telegram's word on whether they administer it when it matters."""
        user, chat = user_of(update), chat_of(update)
        if chat.type == ChatType.PRIVATE:
            return Requester.direct("telegram", str(user.id))
        is_admin = False
        if need_admin:
            member = await chat.get_member(user.id)
            is_admin = member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        return Requester("telegram", str(user.id), Scope("chat", "telegram", str(chat.id)), is_scope_admin=is_admin)


def has_a_file(message: Message | None) -> bool:
    """Whether `message` carries a file of any kind (a document, a photo, a sticker, ...)."""
    return message is not None and any((message.document, message.photo, message.sticker, message.voice,
                                        message.audio, message.video_note, message.video, message.animation))


def found_in(message: Message, find: Callable[[Message | None], Attachment | None]
             ) -> tuple[Message, Attachment] | None:
    """The message holding what `find` looks for (this one, or the one it replies to), and
    what it found there; None when neither holds it."""
    for candidate in (message, message.reply_to_message):
        if candidate is not None and (attachment := find(candidate)) is not None:
            return candidate, attachment
    return None


# The updates that reach a handler: polling asks for messages and callback queries only
# (allowed_updates), command and message handlers take messages, the callback query handler
# takes queries; every message and query has a chat and a sender.

def message_of(update: Update) -> Message:
    """The message a command or message handler was given."""
    message = update.effective_message
    assert message is not None, "command and message handlers are given messages"
    return message


def query_of(update: Update) -> CallbackQuery:
    """The tap the callback query handler was given."""
    query = update.callback_query
    assert query is not None, "the callback query handler is given callback queries"
    return query


def user_of(update: Update) -> User:
    """Who sent the message or tapped the button."""
    user = update.effective_user
    assert user is not None, "messages and callback queries have a sender"
    return user


def chat_of(update: Update) -> Chat:
    """The chat of the message, or of the message with the button."""
    chat = update.effective_chat
    assert chat is not None, "messages and callback queries (with their message) are in a chat"
    return chat
