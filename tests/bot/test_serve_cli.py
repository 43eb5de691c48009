"""`memeswap serve` as an operator runs it: one clear line for a missing or rejected token;
otherwise a real process that answers Telegram users, serves /metrics and /healthz, never
logs its token, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request

import cv2
import pytest

from memeswap.inference.jobs.local_redis import free_loopback_port
from memeswap.inference.samples import crop_face
from tests.bot.ops_ports import DEFAULT_OPS_PORT, healthy, held, served_port
from tests.fakes.discord_api import DEFAULT_TOKEN, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

TOKEN = "123456:SECRET-TEST-TOKEN"


def serve_env(tmp_path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESWAP_")}
    env.update({"MEMESWAP_DATA_DIR": str(tmp_path / "data"), **{f"MEMESWAP_{k.upper()}": v for k, v in
                                                                  settings.items()}})
    return env


def both_platforms_env(tmp_path, telegram: FakeTelegram, discord_fake: FakeDiscord, **settings: str) -> dict[str, str]:
    return serve_env(tmp_path, telegram_token=TOKEN, telegram_api_url=telegram.base_url,
                     telegram_file_url=telegram.base_file_url, discord_token=discord_fake.token,
                     discord_api_url=discord_fake.api_base, discord_gateway_url=discord_fake.gateway_url, **settings)


async def run_serve(tmp_path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "memeswap", *args, "serve", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_serve_without_a_token_says_so_in_one_line(tmp_path):
    async def main():
        process = await run_serve(tmp_path, serve_env(tmp_path))
        return process.returncode, *(await process.communicate())

    _, out, err = asyncio.run(main())
    lines = err.decode().strip().splitlines()
    assert lines == ["error: no chat platform to serve: set MEMESWAP_TELEGRAM_TOKEN or MEMESWAP_DISCORD_TOKEN "
                     "(see the README)"]
    assert not (tmp_path / "data").exists()  # nothing opened, nothing written


def test_serve_with_a_rejected_token_says_so_in_one_line_without_the_token(tmp_path):
    async def main():
        async with FakeTelegram(token=TOKEN) as fake:
            env = serve_env(tmp_path, telegram_token="999:WRONG-TOKEN", telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url)
            process = await run_serve(tmp_path, env)
            out, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, out.decode(), err.decode()

    code, out, err = asyncio.run(main())
    assert code == 2
    assert err.strip().splitlines() == [
        "error: Telegram rejected MEMESWAP_TELEGRAM_TOKEN; copy the token BotFather gave you (it looks like "
        "123456789:AA...)"]
    assert "WRONG-TOKEN" not in out + err


def test_discord_sync_then_serve_both_platforms_in_one_process(tmp_path):
    """`memeswap discord sync --guild` registers the commands; `memeswap serve` with both
    tokens answers a Telegram user and a Discord interaction, serves /metrics and /healthz,
    never logs either token, and stops cleanly on SIGTERM."""
    port = free_loopback_port()
    guild = 1001 << 22

    async def main():
        async with FakeTelegram(token=TOKEN) as telegram, FakeDiscord() as discord_fake:
            discord_fake.guild(guild, "Meme Lab")
            channel = discord_fake.text_channel(guild, 5001, "memes")
            env = both_platforms_env(tmp_path, telegram, discord_fake, ops_port=str(port))
            sync = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "memeswap", "discord", "sync", "--guild", str(guild), cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            synced_out, synced_err = await asyncio.wait_for(sync.communicate(), 60)
            process = await run_serve(tmp_path, env, "--verbose")  # INFO logs: no token may be in them
            try:
                user = telegram.user(5, "Olga")
                telegram.send_text(telegram.private_chat(user), user, "/start")
                await telegram.wait_for(lambda: telegram.messages_to(5), timeout=120)
                alice = discord_fake.user(7, "alice")
                discord_fake.member(guild, alice)
                await discord_fake.wait_for(lambda: any(e["t"] == "GUILD_CREATE" for e in discord_fake.gateway_events),
                                            timeout=60)
                forget = discord_fake.slash_command(guild, channel, alice, "forget")
                await discord_fake.wait_for(lambda: (discord_fake.original_response(forget) or {}).get("content"),
                                            timeout=30)
                metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
                health = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/healthz")
            finally:
                process.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(process.communicate(), 60)
            return (sync.returncode, synced_out.decode() + synced_err.decode(), discord_fake.synced_commands(guild),
                    process.returncode, out.decode() + err.decode(), telegram.messages_to(5), telegram.commands,
                    discord_fake.original_response(forget), metrics, health)

    (sync_code, sync_output, synced, code, logs, replies, commands, forget, metrics, health) = asyncio.run(main())
    assert sync_code == 0 and sync_output.startswith(f"synced 7 commands to server {1001 << 22}:"), sync_output
    assert {c["name"] for c in synced} == {"swap", "face", "forget", "templates", "templates-admin",
                                           "Swap my face into this", "help"}
    assert code == 0, logs
    assert "send me a selfie" in replies[0]["text"].lower()
    assert any(c["command"] == "templates" for cs in commands.values() for c in cs)
    assert forget["content"] == "I had nothing stored about you."
    assert metrics[0] == 200 and "memeswap_jobs" in metrics[1]
    assert health[0] == 200
    assert "polling as @memeswap_test_bot" in logs and "discord: connected as" in logs
    assert TOKEN not in logs and DEFAULT_TOKEN not in logs


def test_serve_where_the_default_ops_port_is_taken_serves_on_a_free_one(tmp_path):
    async def main():
        async with FakeTelegram(token=TOKEN) as telegram:
            env = serve_env(tmp_path, telegram_token=TOKEN, telegram_api_url=telegram.base_url,
                            telegram_file_url=telegram.base_file_url)  # MEMESWAP_OPS_PORT unset
            process = await run_serve(tmp_path, env)
            seen: list[str] = []
            try:
                port = await served_port(process.stderr, seen)
                health = await healthy(port)
            finally:
                process.send_signal(signal.SIGTERM)
                _, err = await asyncio.wait_for(process.communicate(), 60)
            return port, health, process.returncode, "".join(seen) + err.decode()

    with held(DEFAULT_OPS_PORT):
        port, (status, body), code, logs = asyncio.run(main())
    assert code == 0, logs
    assert port != DEFAULT_OPS_PORT and status == 200, body
    moved = [line for line in logs.splitlines() if f"port {DEFAULT_OPS_PORT} is taken" in line]
    assert len(moved) == 1 and f"on port {port} instead" in moved[0], logs


def test_serve_with_a_busy_ops_port_it_was_given_is_one_clear_line(tmp_path):
    async def main(port: int):
        async with FakeTelegram(token=TOKEN) as telegram:
            env = serve_env(tmp_path, telegram_token=TOKEN, telegram_api_url=telegram.base_url,
                            telegram_file_url=telegram.base_file_url, ops_port=str(port))
            process = await run_serve(tmp_path, env)
            _, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, err.decode()

    with held() as port:
        code, err = asyncio.run(main(port))
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: cannot serve /metrics and /healthz on 127.0.0.1:{port} (MEMESWAP_OPS_HOST, MEMESWAP_OPS_PORT): "
        "address already in use"]


def swaps_in_flight_at_sigterm(tmp_path, selfie: bytes, grace_s: float) -> dict:
    """`memeswap serve` with both platforms; a Telegram user and a Discord user each start a
    swap; SIGTERM comes while the first runs. Returns what each user sees at the end."""
    guild = 1002 << 22

    async def main():
        async with FakeTelegram(token=TOKEN) as telegram, FakeDiscord() as discord_fake:
            discord_fake.guild(guild, "Meme Lab")
            channel = discord_fake.text_channel(guild, 5002, "memes")
            env = both_platforms_env(tmp_path, telegram, discord_fake, ops_port="0", shutdown_grace_s=str(grace_s),
                                     log_format="json", job_workers="1",
                                     download_loopback_origins=json.dumps([discord_fake.http_base]))
            sync = await asyncio.create_subprocess_exec(sys.executable, "-m", "memeswap", "discord", "sync", "--guild",
                                                        str(guild), cwd=tmp_path, env=env)
            await asyncio.wait_for(sync.wait(), 60)
            process = await run_serve(tmp_path, env)
            try:
                user = telegram.user(5, "Olga")
                chat = telegram.private_chat(user)
                photo = telegram.send_photo(chat, user, selfie)
                await telegram.wait_for(lambda: any((m.get("reply_to_message") or {}).get("message_id")
                                                    == photo["message_id"] for m in telegram.messages_to(5)), 120)
                picker = next(m for m in telegram.messages_to(5)
                              if (m.get("reply_to_message") or {}).get("message_id") == photo["message_id"])
                telegram.press_button(chat, user, picker, "photo:bounce")
                alice = discord_fake.user(7, "alice")
                discord_fake.member(guild, alice)
                await discord_fake.wait_for(lambda: any(e["t"] == "GUILD_CREATE" for e in discord_fake.gateway_events),
                                            timeout=60)
                await telegram.wait_for(lambda: any("Swapping faces" in (e["params"].get("text") or "")
                                                    for e in telegram.sent if e["method"] == "editMessageText"), 120)
                attachment = discord_fake.attachment(channel["id"], selfie, "me.jpg", "image/jpeg")
                swap = discord_fake.slash_command(guild, channel, alice, "swap",
                                                  {"template": "bounce", "selfie": attachment})
                # One swap at a time (MEMESWAP_JOB_WORKERS=1): Discord's waits behind Telegram's.
                await discord_fake.wait_for(lambda: "In the queue" in (discord_fake.original_response(swap) or {})
                                            .get("content", ""), 60)
            finally:
                process.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(process.communicate(), 120)
            edits = [e["params"] for e in telegram.sent if e["method"] == "editMessageText"]
            status_id = next(e["message_id"] for e in edits if "Swapping faces" in e["text"])
            return {"code": process.returncode, "logs": out.decode() + err.decode(),
                    "telegram_status": [e["text"] for e in edits if e["message_id"] == status_id][-1],
                    "telegram_memes": [s for s in telegram.sent if s["method"] == "sendAnimation"],
                    "discord": discord_fake.original_response(swap)}

    return asyncio.run(main())


@pytest.fixture(scope="module")
def selfie(group) -> bytes:
    image, faces = group
    return cv2.imencode(".jpg", crop_face(image, faces[2])[:, :, ::-1])[1].tobytes()


def test_sigterm_mid_swap_tells_every_user_the_bot_is_restarting(tmp_path, selfie):
    """No grace: the swaps in flight end at once, and each user's status message says so,
    on both platforms, before the adapters stop."""
    seen = swaps_in_flight_at_sigterm(tmp_path, selfie, grace_s=0)
    assert seen["code"] == 0, seen["logs"][-3000:]
    assert seen["telegram_status"] == "⚠️ The bot is restarting — try again in a minute.", seen["telegram_status"]
    assert seen["discord"]["content"] == "⚠️ The bot is restarting — try again in a minute.", seen["discord"]
    assert seen["telegram_memes"] == []


def test_sigterm_mid_swap_lets_the_swaps_in_flight_finish_within_the_grace(tmp_path, selfie):
    seen = swaps_in_flight_at_sigterm(tmp_path, selfie, grace_s=120)
    assert seen["code"] == 0, seen["logs"][-3000:]
    assert seen["telegram_status"] == "✅ Done!" and len(seen["telegram_memes"]) == 1
    assert seen["discord"]["content"] == "✅ Here's your meme!" and seen["discord"]["attachments"], seen["discord"]
