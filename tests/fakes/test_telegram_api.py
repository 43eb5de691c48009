"""The real python-telegram-bot `Bot` and `Application` against the FakeTelegram server."""

import asyncio
import contextlib
import datetime as dtm
import io
import socket
import struct
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Conflict, EndPointNotFound, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from tests.fakes.telegram_api import DOWNLOAD, SECRET_HEADER, FakeTelegram, JSONDict

TOKEN = "123456:TEST-TOKEN"


def jpeg(width: int = 640, height: int = 480) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def tiny_mp4(width: int = 320, height: int = 240, seconds: int = 3) -> bytes:
    """Just the MP4 boxes the fake reads (ftyp, moov/mvhd, trak/tkhd) plus some mdat bytes."""
    mvhd = bytes(4) + bytes(8) + struct.pack(">II", 1000, seconds * 1000) + bytes(80)
    tkhd = bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16)
    return box(b"ftyp", b"isom\0\0\2\0isomiso2mp41") + box(b"moov", box(b"mvhd", mvhd) + box(
        b"trak", box(b"tkhd", tkhd))) + box(b"mdat", b"\x00\x11" * 500)


def retry_seconds(err: RetryAfter) -> float:
    value = err.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


@contextlib.asynccontextmanager
async def fake_and_bot() -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    async with FakeTelegram() as fake:
        async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
            yield fake, bot
        assert fake.errors == []


def test_get_me_wrong_token_and_unknown_method() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            me = await bot.get_me()
            assert (me.id, me.username, me.is_bot) == (123456, "memeswap_test_bot", True)
            with pytest.raises(EndPointNotFound):
                await bot.do_api_request("noSuchMethod")
            assert fake.requests[-1] == {"method": "noSuchMethod", "status": 404}
            with pytest.raises(InvalidToken, match="(?i)rejected"):
                async with Bot("999:WRONG", base_url=fake.base_url, base_file_url=fake.base_file_url):
                    pass
            assert (await bot.get_me()).username == "memeswap_test_bot"

    asyncio.run(main())


def test_send_and_edit_message() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            chat = fake.private_chat(fake.user(7, "Alice"))
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
            first = await bot.send_message(chat["id"], "hello", reply_markup=keyboard)
            second = await bot.send_message(chat["id"], "again", reply_to_message_id=first.message_id)
            assert (first.message_id, second.message_id) == (1, 2)
            assert first.reply_markup == keyboard and first.from_user.id == 123456 and first.chat.id == 7
            assert second.reply_to_message.message_id == 1
            assert fake.requests[-1]["encoding"] == "form"
            assert fake.sent[0]["params"]["reply_markup"] == keyboard.to_dict()

            edited = await bot.edit_message_text("hi", chat_id=chat["id"], message_id=first.message_id)
            assert edited.text == "hi" and edited.reply_markup is None and edited.edit_date is not None
            with pytest.raises(BadRequest, match="(?i)message is not modified"):
                await bot.edit_message_text("hi", chat_id=chat["id"], message_id=first.message_id)
            await bot.edit_message_reply_markup(chat["id"], first.message_id, reply_markup=keyboard)
            with pytest.raises(BadRequest, match="(?i)message is not modified"):
                await bot.edit_message_reply_markup(chat["id"], first.message_id, reply_markup=keyboard)

            with pytest.raises(BadRequest, match="(?i)message text is empty"):
                await bot.send_message(chat["id"], "")
            with pytest.raises(BadRequest, match="(?i)message is too long"):
                await bot.send_message(chat["id"], "x" * 4097)
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await bot.send_message(424242, "nobody")
            await bot.send_message(chat["id"], "x" * 4096)

            assert await bot.delete_message(chat["id"], second.message_id)
            assert await bot.send_chat_action(chat["id"], "upload_video")
            seen = fake.messages_to(chat["id"])
            assert [m["text"][:5] for m in seen] == ["hi", "xxxxx"]
            assert seen[0]["reply_markup"] == keyboard.to_dict()
            assert [s["method"] for s in fake.sent] == [
                "sendMessage", "sendMessage", "editMessageText", "editMessageReplyMarkup", "sendMessage",
                "deleteMessage", "sendChatAction",
            ]

    asyncio.run(main())


def test_parse_modes() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            chat = fake.private_chat(fake.user(7))
            msg = await bot.send_message(chat["id"], "<b>Bold</b> &amp; <i>it</i>", parse_mode="HTML")
            assert msg.text == "Bold & it"
            assert [(e.type, e.offset, e.length) for e in msg.entities] == [("bold", 0, 4), ("italic", 7, 2)]
            with pytest.raises(BadRequest, match="(?i)can't parse entities"):
                await bot.send_message(chat["id"], "<b>open", parse_mode="HTML")
            with pytest.raises(BadRequest, match="(?i)can't parse entities"):
                await bot.send_message(chat["id"], "<blink>x</blink>", parse_mode="HTML")
            with pytest.raises(BadRequest, match="(?i)reserved"):
                await bot.send_message(chat["id"], "version 1.5", parse_mode="MarkdownV2")
            ok = await bot.send_message(chat["id"], r"*version* 1\.5", parse_mode="MarkdownV2")
            assert ok.text == "version 1.5"

    asyncio.run(main())


def test_send_animation_upload_then_file_id() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            chat = fake.private_chat(fake.user(7))
            mp4 = tiny_mp4()
            first = await bot.send_animation(chat["id"], animation=mp4, filename="meme.mp4", caption="done")
            anim = first.animation
            assert (anim.width, anim.height, anim.file_size) == (320, 240, len(mp4))
            assert fake.messages_to(chat["id"])[0]["animation"]["duration"] == 3
            assert first.document.file_unique_id == anim.file_unique_id and first.caption == "done"
            assert fake.sent[-1]["files"] == {"animation": mp4}
            assert fake.requests[-1]["encoding"] == "multipart"

            again = await bot.send_animation(chat["id"], animation=anim.file_id)
            assert fake.sent[-1]["files"] == {} and fake.sent[-1]["params"]["animation"] == anim.file_id
            assert (again.animation.file_id, again.animation.file_unique_id) == (anim.file_id, anim.file_unique_id)
            assert [m["animation_bytes"] for m in fake.messages_to(chat["id"])] == [mp4, mp4]
            assert fake.file_bytes(anim.file_id) == mp4
            await bot.edit_message_caption(chat["id"], first.message_id, caption="done, 3 s")
            assert fake.messages_to(chat["id"])[0]["caption"] == "done, 3 s"

            doc = await bot.send_document(chat["id"], document=b"%PDF-1.4 fake", filename="a.pdf")
            assert doc.document.file_name == "a.pdf" and doc.document.file_size == 13
            video = await bot.send_video(chat["id"], video=mp4, filename="v.mp4")
            assert (video.video.width, video.video.height) == (320, 240)
            photo = await bot.send_photo(chat["id"], photo=jpeg(1000, 500))
            assert photo.photo[-1].width == 1000 and photo.photo[0].width == 90

            with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
                await bot.send_animation(chat["id"], animation="no-such-file-id")
            fake.max_upload_bytes = 1000
            with pytest.raises(NetworkError, match="(?i)Request Entity Too Large"):
                await bot.send_animation(chat["id"], animation=mp4, filename="meme.mp4")
            assert len(fake.messages_to(chat["id"])) == 5

    asyncio.run(main())


def test_user_photo_round_trips_through_get_file() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            alice = fake.user(7)
            chat = fake.private_chat(alice)
            data = jpeg(640, 480)
            sent = Message.de_json(fake.send_photo(chat, alice, data, caption="me"), bot)
            assert [(p.width, p.height) for p in sent.photo] == [(90, 68), (320, 240), (640, 480)]
            file = await bot.get_file(sent.photo[-1].file_id)
            assert file.file_size == len(data) and file.file_path.startswith(fake.base_file_url)
            assert bytes(await file.download_as_bytearray()) == data
            thumb = await (await bot.get_file(sent.photo[0].file_id)).download_as_bytearray()
            assert Image.open(io.BytesIO(bytes(thumb))).size == (90, 68)

            big = fake.add_file(b"\0" * (20 * 1024 * 1024 + 1), "big.bin")
            with pytest.raises(BadRequest, match="(?i)file is too big"):
                await bot.get_file(big)
            with pytest.raises(BadRequest, match="(?i)invalid file_id"):
                await bot.get_file("nope")

    asyncio.run(main())


def test_faults_on_get_file_and_on_the_download() -> None:
    """A 5xx, a stall past the client's read timeout and a dropped connection, each on
    getFile and on the file download; the next call works again."""

    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            alice = fake.user(7)
            sent = Message.de_json(fake.send_photo(fake.private_chat(alice), alice, jpeg(320, 240)), bot)
            file_id = sent.photo[-1].file_id

            fake.fail_next("getFile", 500, retry_after=None, description="Internal Server Error")
            with pytest.raises(NetworkError, match="Internal Server Error"):
                await bot.get_file(file_id)
            fake.stall_next("getFile", 5)
            with pytest.raises(TimedOut):
                await bot.get_file(file_id, read_timeout=0.3)
            fake.drop_next("getFile")
            with pytest.raises(NetworkError, match="(?i)disconnected"):
                await bot.get_file(file_id)
            file = await bot.get_file(file_id)

            fake.fail_next(DOWNLOAD, 502, retry_after=None, description="Bad Gateway")
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await file.download_as_bytearray()
            fake.stall_next(DOWNLOAD, 5)
            with pytest.raises(TimedOut):
                await file.download_as_bytearray(read_timeout=0.3)
            fake.drop_next(DOWNLOAD)
            with pytest.raises(NetworkError, match="(?i)disconnected"):
                await file.download_as_bytearray()
            assert len(await file.download_as_bytearray()) == file.file_size

            calls = [(r["method"], r["status"], r.get("fault")) for r in fake.requests if r["method"] != "getMe"]
            assert calls == [("getFile", 500, None), ("getFile", 200, "stall"), ("getFile", None, "drop"),
                             ("getFile", 200, None), (DOWNLOAD, 502, None), (DOWNLOAD, 200, "stall"),
                             (DOWNLOAD, None, "drop"), (DOWNLOAD, 200, None)]
            assert {r["path"] for r in fake.requests if r["method"] == DOWNLOAD} == {
                file.file_path.removeprefix(f"{fake.base_file_url}{TOKEN}/")}

    asyncio.run(main())


def test_forged_callbacks_stickers_and_voice_messages() -> None:
    async def main() -> None:
        async with FakeTelegram() as fake:
            app = build_app(fake)
            seen: list[tuple[str, object]] = []

            async def menu(update: Update, context: object) -> None:
                buttons = [[InlineKeyboardButton("A", callback_data="pick:a")]]
                await update.message.reply_text("pick one", reply_markup=InlineKeyboardMarkup(buttons))

            async def button(update: Update, context: object) -> None:
                seen.append(("callback", update.callback_query.data))
                await update.callback_query.answer()

            async def anything(update: Update, context: object) -> None:
                message = update.message
                seen.append(("sticker", message.sticker.emoji) if message.sticker else
                            ("voice", message.voice.mime_type))

            app.add_handler(CommandHandler("menu", menu))
            app.add_handler(CallbackQueryHandler(button))
            app.add_handler(MessageHandler(filters.Sticker.ALL | filters.VOICE, anything))
            alice = fake.user(1, "Alice")
            dm = fake.private_chat(alice)
            async with polling_app(fake, app):
                fake.send_text(dm, alice, "/menu")
                await fake.wait_for(lambda: len(fake.messages_to(1)) == 1)
                menu_message = fake.messages_to(1)[0]
                with pytest.raises(ValueError, match="no button"):
                    fake.press_button(dm, alice, menu_message, "pick:zz")
                forged = [fake.send_callback(dm, alice, menu_message, data)["id"] for data in ("pick:zz", "", None)]
                fake.send_sticker(dm, alice, "🙂")
                fake.send_voice(dm, alice, duration=3)
                await fake.wait_for(lambda: len(seen) == 5)
                assert fake.answered_callbacks() == forged
            assert seen == [("callback", "pick:zz"), ("callback", ""), ("callback", None), ("sticker", "🙂"),
                            ("voice", "audio/ogg")]
            assert fake.errors == []

    asyncio.run(main())


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_retry_after_and_button_data_limit() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            chat = fake.private_chat(fake.user(7))
            fake.fail_next("sendMessage", 429, retry_after=1)
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(chat["id"], "hello")
            assert retry_seconds(caught.value) == 1
            await bot.send_message(chat["id"], "hello")
            assert [r["status"] for r in fake.requests if r["method"] == "sendMessage"] == [429, 200]
            assert len(fake.sent) == 1

            too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="a" * 65)]])
            with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
                await bot.send_message(chat["id"], "menu", reply_markup=too_long)
            fits = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])
            await bot.send_message(chat["id"], "menu", reply_markup=fits)

    asyncio.run(main())


def test_commands_members_and_chat() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            assert await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("meme", "Make a meme")])
            assert [c.command for c in await bot.get_my_commands()] == ["start", "meme"]
            with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
                await bot.set_my_commands([BotCommand("Bad Command", "x")])

            alice, bob = fake.user(1, "Alice"), fake.user(2, "Bob")
            group = fake.group_chat(-100555, "Memes")
            fake.set_admins(group["id"], [1], owner_id=2)
            assert (await bot.get_chat_member(group["id"], 1)).status == "administrator"
            assert (await bot.get_chat_member(group["id"], 2)).status == "creator"
            fake.user(3, "Carol")
            assert (await bot.get_chat_member(group["id"], 3)).status == "member"
            admins = await bot.get_chat_administrators(group["id"])
            assert [(a.user.first_name, a.status) for a in admins] == [("Bob", "creator"), ("Alice", "administrator")]
            info = await bot.get_chat(group["id"])
            assert (info.type, info.title) == ("supergroup", "Memes")
            assert (await bot.get_chat(fake.private_chat(alice)["id"])).type == "private"
            assert bob["first_name"] == "Bob"

    asyncio.run(main())


def test_get_updates_offset_long_poll_and_close() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            alice = fake.user(7)
            chat = fake.private_chat(alice)
            fake.send_text(chat, alice, "one")
            fake.send_text(chat, alice, "/two now")
            updates = await bot.get_updates(timeout=0)
            assert [u.message.text for u in updates] == ["one", "/two now"]
            assert updates[1].message.entities[0].type == "bot_command"
            assert len(await bot.get_updates(timeout=0)) == 2  # not confirmed yet
            assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()
            assert fake.pending_updates == []

            started = time.monotonic()
            poll = asyncio.create_task(bot.get_updates(timeout=5))
            await asyncio.sleep(0.2)
            fake.send_text(chat, alice, "late")
            got = await poll
            assert [u.message.text for u in got] == ["late"] and time.monotonic() - started < 2

            fake.send_text(chat, alice, "text is filtered")
            assert await bot.get_updates(offset=got[-1].update_id + 1, timeout=0,
                                         allowed_updates=["callback_query"]) == ()

            poll = asyncio.create_task(bot.get_updates(timeout=30))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await fake.close()
            assert await asyncio.wait_for(poll, 3) == ()
            assert time.monotonic() - started < 2

    asyncio.run(main())


def test_server_survives_bad_requests() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            fake.private_chat(fake.user(7))
            url = f"{fake.base_url}{TOKEN}/sendMessage"
            async with aiohttp.ClientSession() as session:
                async with session.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 400 and (await r.json())["ok"] is False
                async with session.post(url, data=b"--x\r\ngarbage", headers={
                        "Content-Type": "multipart/form-data; boundary=x"}) as r:
                    assert r.status == 400 and (await r.json())["ok"] is False
                async with session.post(url, json={"chat_id": 7, "text": "json body"}) as r:
                    body = await r.json()
                    assert body["ok"] is True and body["result"]["text"] == "json body"
                async with session.get(f"{fake.base_url}{TOKEN}/getMe") as r:
                    assert (await r.json())["result"]["username"] == "memeswap_test_bot"
            assert (await bot.get_me()).id == 123456

    asyncio.run(main())


@contextlib.asynccontextmanager
async def polling_app(fake: FakeTelegram, app: Application) -> AsyncIterator[Application]:
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


def build_app(fake: FakeTelegram) -> Application:
    return (
        ApplicationBuilder().token(TOKEN).base_url(fake.base_url).base_file_url(fake.base_file_url)
        .get_updates_read_timeout(3).build()
    )


def test_application_handlers_end_to_end() -> None:
    handled: list[int] = []

    async def start(update: Update, context: object) -> None:
        handled.append(update.update_id)
        await update.message.reply_text(f"hello {update.effective_user.first_name}")

    async def photo(update: Update, context: object) -> None:
        handled.append(update.update_id)
        data = await (await update.message.photo[-1].get_file()).download_as_bytearray()
        await update.message.reply_text(f"{len(data)} bytes")

    async def menu(update: Update, context: object) -> None:
        handled.append(update.update_id)
        buttons = [[InlineKeyboardButton(x.upper(), callback_data=f"pick:{x}") for x in "ab"]]
        await update.message.reply_text("pick one", reply_markup=InlineKeyboardMarkup(buttons))

    async def button(update: Update, context: object) -> None:
        handled.append(update.update_id)
        await update.callback_query.answer("ok")
        await update.callback_query.edit_message_text(f"picked {update.callback_query.data}")

    async def main() -> None:
        async with FakeTelegram() as fake:
            app = build_app(fake)
            app.add_handler(CommandHandler("start", start))
            app.add_handler(CommandHandler("menu", menu))
            app.add_handler(MessageHandler(filters.PHOTO, photo))
            app.add_handler(CallbackQueryHandler(button))
            alice, bob = fake.user(1, "Alice"), fake.user(2, "Bob")
            dm, group = fake.private_chat(alice), fake.group_chat(-100777, "Memes")

            def texts(chat: dict) -> list[str]:
                return [m["text"] for m in fake.messages_to(chat["id"])]

            async with polling_app(fake, app):
                fake.send_text(dm, alice, "/start")
                fake.send_text(group, bob, "/start@memeswap_test_bot")
                await fake.wait_for(lambda: texts(dm) == ["hello Alice"] and texts(group) == ["hello Bob"])

                data = jpeg(800, 600)
                fake.send_photo(dm, alice, data)
                await fake.wait_for(lambda: texts(dm)[-1:] == [f"{len(data)} bytes"])

                fake.send_text(dm, alice, "/menu")
                await fake.wait_for(lambda: texts(dm)[-1:] == ["pick one"])
                menu_message = fake.messages_to(dm["id"])[-1]
                assert len(menu_message["reply_markup"]["inline_keyboard"][0]) == 2
                fake.press_button(dm, alice, menu_message, "pick:b")
                await fake.wait_for(lambda: texts(dm)[-1:] == ["picked pick:b"])
                assert "reply_markup" not in fake.messages_to(dm["id"])[-1]
                answers = [s for s in fake.sent if s["method"] == "answerCallbackQuery"]
                assert len(answers) == 1 and answers[0]["params"]["text"] == "ok" and answers[0]["chat_id"] == 1

                await fake.wait_for(lambda: not fake.pending_updates)
            assert sorted(handled) == sorted(set(fake.delivered)) == [1, 2, 3, 4, 5]
            assert len(fake.delivered) == len(set(fake.delivered))  # confirmed updates never come back
            assert fake.errors == []

    asyncio.run(main())


def test_two_chats_at_once() -> None:
    async def slow_start(update: Update, context: object) -> None:
        await asyncio.sleep(0.2)
        await update.message.reply_text(f"hi {update.effective_chat.id}")

    async def main() -> None:
        async with FakeTelegram() as fake:
            app = build_app(fake)
            app.add_handler(CommandHandler("start", slow_start, block=False))
            users = [fake.user(i, f"U{i}") for i in (11, 12)]
            chats = [fake.private_chat(u) for u in users]
            async with polling_app(fake, app):
                for chat, user in zip(chats, users):
                    fake.send_text(chat, user, "/start")
                await fake.wait_for(lambda: all(
                    [m["text"] for m in fake.messages_to(c["id"])] == [f"hi {c['id']}"] for c in chats))
                await fake.wait_for(lambda: not fake.pending_updates)
            assert fake.errors == []

    asyncio.run(main())


@contextlib.asynccontextmanager
async def webhook_receiver(answers: list[int]) -> AsyncIterator[tuple[str, list[tuple[str | None, JSONDict]]]]:
    """A bot's webhook endpoint on loopback: (its URL, each POST's secret header and JSON body).
    It answers the statuses in `answers` first, then 200."""
    posts: list[tuple[str | None, JSONDict]] = []

    async def hook(request: web.Request) -> web.Response:
        posts.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/tg/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/tg/hook", posts
    finally:
        await runner.cleanup()


def test_set_webhook_refuses_what_telegram_refuses() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            for url, secret, error in [
                ("http://bot.example.com/hook", None, "HTTPS URL must be provided"),
                ("https://bot.example.com:9000/hook", None, "only on ports 80, 88, 443 or 8443"),
                ("https://bot.example.com/hook", "not secret!", "unallowed characters"),
                ("https://bot.example.com/hook", "x" * 257, "unallowed characters"),
            ]:
                with pytest.raises(BadRequest, match=f"(?i){error}"):
                    await bot.set_webhook(url, secret_token=secret)
            assert fake.webhook is None
            assert await bot.set_webhook("https://bot.example.com:8443/hook", secret_token="a-Z_9" * 50)
            assert (await bot.get_webhook_info()).url == "https://bot.example.com:8443/hook"
            assert await bot.set_webhook("")  # an empty URL removes it, as in Telegram
            assert fake.webhook is None and (await bot.get_webhook_info()).url == ""

    asyncio.run(main())


def test_webhook_delivers_updates_in_order_with_the_secret_and_retries() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot), webhook_receiver([500]) as (url, posts):
            alice = fake.user(7)
            chat = fake.private_chat(alice)
            fake.send_text(chat, alice, "before")
            assert await bot.set_webhook(url, secret_token="s3cret-_", allowed_updates=["message"])
            assert fake.webhook == {"url": url, "secret_token": "s3cret-_", "allowed_updates": ["message"],
                                    "max_connections": 40}
            with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
                await bot.get_updates(timeout=0)
            await fake.wait_for(lambda: fake.delivered)  # the first answer was 500: tried again
            sent = fake.send_text(chat, alice, "after")
            await fake.wait_for(lambda: len(fake.delivered) == 2)
            info = await bot.get_webhook_info()

            assert [secret for secret, _ in posts] == ["s3cret-_"] * 3
            assert [body["message"]["text"] for _, body in posts] == ["before", "before", "after"]
            assert posts[-1][1]["message"]["message_id"] == sent["message_id"]
            assert [p["status"] for p in fake.webhook_posts] == [500, 200, 200]
            assert fake.pending_updates == []
            assert info.url == url and info.pending_update_count == 0 and info.allowed_updates == ("message",)
            assert info.last_error_message == "Wrong response from the webhook: 500"

            forged = {"update_id": 999, "message": {**sent, "text": "forged"}}
            assert await fake.post_to_webhook(forged, secret="wrong") == 200  # the receiver judges the secret
            assert posts[-1] == ("wrong", forged)
            assert await fake.post_to_webhook(forged, secret=None) == 200 and posts[-1][0] is None

            assert await bot.delete_webhook()
            assert fake.webhook is None
            fake.send_text(chat, alice, "polled")
            assert [u.message.text for u in await bot.get_updates(timeout=0)] == ["polled"]
            assert len(posts) == 5 and fake.polls == 2

    asyncio.run(main())


def test_webhook_that_does_not_answer_keeps_the_update_pending() -> None:
    async def main() -> None:
        async with fake_and_bot() as (fake, bot):
            with socket.socket() as unused:
                unused.bind(("127.0.0.1", 0))
                port = unused.getsockname()[1]
            assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s")
            alice = fake.user(7)
            fake.send_text(fake.private_chat(alice), alice, "lost?")
            await fake.wait_for(lambda: len(fake.webhook_posts) >= 2)
            info = await bot.get_webhook_info()
            assert info.pending_update_count == 1 and info.last_error_message == "Connection refused"
            assert {p["status"] for p in fake.webhook_posts} == {None} and fake.delivered == []

    asyncio.run(main())
