"""Telegram by webhook (MEMESWAP_TELEGRAM_WEBHOOK_URL): the real python-telegram-bot registers
its URL with the secret, takes the updates the fake Telegram POSTs to its webhook server on
loopback (and never polls), and refuses a POST without the secret; a setting Telegram would
refuse is one line from `memeswap serve`."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest

from memeswap.inference.errors import InputError
from memeswap.inference.jobs.local_redis import free_loopback_port
from tests.bot.adapters.telegram.test_conversation import TIMEOUT, bot_message, replying_to, with_text
from tests.bot.ops_ports import held
from tests.bot.test_serve_cli import TOKEN as SERVE_TOKEN
from tests.bot.test_serve_cli import run_serve, serve_env
from tests.fakes.telegram_api import FakeTelegram

SECRET = "webhook-Secret_0123456789"


def webhook_settings(port: int, path: str = "/telegram/hook") -> dict:
    return {"telegram_webhook_url": f"http://127.0.0.1:{port}{path}", "telegram_webhook_secret": SECRET,
            "telegram_webhook_port": port}


def forged(fake: FakeTelegram, chat: dict, user: dict, text: str) -> dict:
    """An update no one sent through Telegram, as a stranger who found the URL would POST it."""
    return {"update_id": 10_000, "message": {"message_id": 10_000, "date": 0, "chat": chat, "from": user,
                                             "text": text, "entities": [{"type": "bot_command", "offset": 0,
                                                                         "length": len(text)}]}}


def test_the_bot_registers_its_webhook_and_a_posted_selfie_becomes_a_meme(telegram_bot, selfie_jpeg, caplog):
    caplog.set_level(logging.INFO)
    port = free_loopback_port()

    async def main():
        async with telegram_bot(**webhook_settings(port)) as (fake, services):
            registered = dict(fake.webhook or {})
            alice = fake.user(7, "Alice")
            chat = fake.private_chat(alice)
            fake.send_text(chat, alice, "/start")
            welcome = await bot_message(fake, 7, with_text("send me a selfie"))
            photo = fake.send_photo(chat, alice, selfie_jpeg)
            picker = await bot_message(fake, 7, replying_to(photo))
            fake.press_button(chat, alice, picker, "photo:bounce")
            meme = await bot_message(fake, 7, lambda m: "animation" in m, TIMEOUT)
        return registered, welcome, meme, fake

    registered, welcome, meme, fake = asyncio.run(main())
    assert registered == {"url": f"http://127.0.0.1:{port}/telegram/hook", "secret_token": SECRET,
                          "allowed_updates": ["message", "callback_query"], "max_connections": 40}
    assert "only swap your own face" in welcome["text"].lower()
    assert meme["animation_bytes"][:8].endswith(b"ftyp")
    assert fake.polls == 0  # not one getUpdates
    assert [p["status"] for p in fake.webhook_posts] == [200] * 3 and fake.pending_updates == []
    methods = [r["method"] for r in fake.requests]
    assert methods.count("setWebhook") == 1
    assert "deleteWebhook" not in methods and fake.webhook is not None  # other replicas still take updates
    logs = [r.getMessage() for r in caplog.records]
    assert f"telegram: webhook on 127.0.0.1:{port} /telegram/hook as @memeswap_test_bot" in logs
    assert not any(SECRET in line for line in logs)


def test_a_post_without_the_secret_is_refused_and_does_nothing(telegram_bot):
    port = free_loopback_port()

    async def main():
        async with telegram_bot(**webhook_settings(port)) as (fake, services):
            bo = fake.user(8, "Bo")
            chat = fake.private_chat(bo)
            wrong = await fake.post_to_webhook(forged(fake, chat, bo, "/templates"), secret="not-" + SECRET)
            missing = await fake.post_to_webhook(forged(fake, chat, bo, "/templates"), secret=None)
            asked = fake.send_text(chat, bo, "/start")  # what Telegram itself delivers is taken
            await bot_message(fake, 8, replying_to(asked))
            await asyncio.sleep(0.5)  # time for a forged update to be answered, had it been taken
            return wrong, missing, asked, fake.messages_to(8)

    wrong, missing, asked, replies = asyncio.run(main())
    assert (wrong, missing) == (403, 403)
    assert len(replies) == 1 and replies[0]["reply_to_message"]["message_id"] == asked["message_id"]


@pytest.mark.parametrize(("listen", "reason"), [
    ("127.0.0.1", "address already in use"),  # the port is held by another process
    ("192.0.2.1", "cannot assign requested address"),  # an address of no interface here (TEST-NET-1)
])
def test_a_webhook_port_that_cannot_be_had_is_one_line(telegram_bot, listen, reason):
    async def main():
        with held() as port:
            async with telegram_bot(**webhook_settings(port), telegram_webhook_listen=listen):
                pass

    with pytest.raises(InputError) as raised:
        asyncio.run(main())
    assert str(raised.value).startswith(f"cannot take Telegram's updates on {listen}:")
    assert str(raised.value).endswith(f"(MEMESWAP_TELEGRAM_WEBHOOK_LISTEN, MEMESWAP_TELEGRAM_WEBHOOK_PORT): {reason}")


def test_a_webhook_telegram_refuses_is_one_line(telegram_bot):
    def refuse(fake: FakeTelegram) -> None:
        fake.fail_next("setWebhook", 400, None, "Bad Request: bad webhook: Failed to resolve host: Name or service "
                                                "not known")

    async def main():
        async with telegram_bot(before_start=refuse, **webhook_settings(free_loopback_port())):
            pass

    with pytest.raises(InputError) as raised:
        asyncio.run(main())
    assert str(raised.value) == ("Telegram refused MEMESWAP_TELEGRAM_WEBHOOK_URL: Bad webhook: failed to resolve "
                                 "host: name or service not known")


@pytest.mark.parametrize(("settings", "line"), [
    ({"telegram_webhook_url": "https://bot.example.com/telegram"},
     "error: invalid MEMESWAP_TELEGRAM_WEBHOOK_SECRET: must be set when MEMESWAP_TELEGRAM_WEBHOOK_URL is "
     "(1 to 256 characters of A-Z, a-z, 0-9, _ and -; e.g. `openssl rand -hex 32`)"),
    ({"telegram_webhook_url": "http://bot.example.com/telegram", "telegram_webhook_secret": SECRET},
     "error: invalid MEMESWAP_TELEGRAM_WEBHOOK_URL: must start with https:// (Telegram posts updates over TLS only)"),
    ({"telegram_webhook_url": "https://bot.example.com:9000/telegram", "telegram_webhook_secret": SECRET},
     "error: invalid MEMESWAP_TELEGRAM_WEBHOOK_URL: may name port 443, 80, 88 or 8443 only (Telegram posts to no "
     "other)"),
    ({"telegram_webhook_url": "https://bot.example.com/telegram", "telegram_webhook_secret": "my secret!"},
     "error: invalid MEMESWAP_TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - "
     "(Telegram's rule)"),
])
def test_a_webhook_setting_telegram_would_refuse_is_one_line_from_serve(tmp_path, settings, line):
    async def main():
        async with FakeTelegram(token=SERVE_TOKEN) as fake:
            env = serve_env(tmp_path, telegram_token=SERVE_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url, **settings)
            process = await run_serve(tmp_path, env)
            out, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, out.decode(), err.decode(), fake.requests

    code, out, err, requests = asyncio.run(main())
    assert code == 2
    assert err.strip().splitlines() == [line]
    assert "my secret!" not in out + err
    assert requests == []  # refused before anything reached Telegram


def test_serve_by_webhook_answers_stops_on_sigterm_and_never_logs_the_secret(tmp_path):
    port = free_loopback_port()

    async def main():
        async with FakeTelegram(token=SERVE_TOKEN) as fake:
            env = serve_env(tmp_path, telegram_token=SERVE_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url, ops_port="0",
                            **{k: str(v) for k, v in webhook_settings(port, "/hook").items()})
            process = await run_serve(tmp_path, env, "--verbose")  # DEBUG logs: the secret may be in none
            try:
                olga = fake.user(5, "Olga")
                fake.send_text(fake.private_chat(olga), olga, "/start")
                await fake.wait_for(lambda: fake.messages_to(5), timeout=120)
            finally:
                process.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, out.decode() + err.decode(), fake

    code, logs, fake = asyncio.run(main())
    assert code == 0, logs[-3000:]
    assert f"telegram: webhook on 127.0.0.1:{port} /hook as @memeswap_test_bot" in logs
    assert SECRET not in logs and SERVE_TOKEN not in logs
    assert fake.polls == 0 and "deleteWebhook" not in [r["method"] for r in fake.requests]
