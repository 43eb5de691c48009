"""What the downloader connects to, end to end through discord.py and the loopback fake: a
listed host on another port is not even looked up, a name that resolves to a site-local
address is not connected to, and proxies named in the environment are never used."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

from tests.bot.adapters.discord.conftest import GUILD, final_response
from tests.bot.adapters.discord.test_hostile_input import (  # noqa: F401 (small_gif: a fixture)
    NOT_FETCHED,
    Listener,
    small_gif,
    swap_into_links,
)

ON_ANOTHER_PORT = "cdn.discordapp.com"  # listed; asked for on port 8443
SITE_LOCAL = "media.discordapp.net"  # listed; "resolves" to fec0::1 here
RESOLVER_REFUSAL = "resolves to an address this bot does not connect to"
ONNXRUNTIME_TELEMETRY = b"CONNECT mobile.events.data.microsoft.com:443 "


def test_a_listed_host_on_another_port_is_not_looked_up_and_a_site_local_one_not_connected_to(
        discord_bot, selfie_jpeg, monkeypatch, caplog):
    real_getaddrinfo = socket.getaddrinfo
    looked_up = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in (ON_ANOTHER_PORT, SITE_LOCAL):
            return real_getaddrinfo(host, port, family, type, proto, flags)
        looked_up.append(host)
        if host == SITE_LOCAL:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("fec0::1", port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    caplog.set_level(logging.INFO, logger="memeswap.download")

    async def main():
        async with discord_bot(download_timeout_s=2) as world:
            return await swap_into_links(world, [f"https://{ON_ANOTHER_PORT}:8443/dance.gif",
                                                 f"https://{SITE_LOCAL}/dance.gif"], selfie_jpeg)

    lines = asyncio.run(main())
    refusals = [r.getMessage() for r in caplog.records if r.name == "memeswap.download"]
    assert lines == [NOT_FETCHED, NOT_FETCHED]
    assert looked_up == [SITE_LOCAL]  # the other port is refused from the URL alone
    assert refusals[0] == f"download from {ON_ANOTHER_PORT} refused: port 8443 is not 443"
    assert RESOLVER_REFUSAL in refusals[1], refusals


def test_proxies_named_in_the_environment_are_never_used(discord_bot, selfie_jpeg, small_gif, monkeypatch):  # noqa: F811
    """A proxy would connect wherever it is asked, past every check: the selfie is fetched
    straight from Discord's (loopback) CDN, and the proxy hears nothing."""
    async def main():
        async with Listener(small_gif).running() as proxy:
            for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
                monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
            for name in ("NO_PROXY", "no_proxy"):
                monkeypatch.delenv(name, raising=False)
            async with discord_bot() as world:
                fake = world.fake
                alice = fake.user(90, "alice")
                fake.member(GUILD, alice)
                selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
                saved = await final_response(fake, fake.slash_command(GUILD, world.channel, alice, "face set",
                                                                      {"selfie": selfie}))
                fetched = [r["path"] for r in fake.requests if r.get("kind") == "file"]
            return saved["content"], fetched, urlsplit(selfie["url"]).path, proxy.requests

    line, fetched, selfie_path, proxied = asyncio.run(main())
    # onnxruntime 1.32's own telemetry may go out through an environment proxy even after
    # `disable_telemetry_events()` (seen in CI: one CONNECT to its collector); nothing of the bot's may
    assert [head for head in proxied if not head.startswith(ONNXRUNTIME_TELEMETRY)] == []
    assert line.startswith("✅ Saved your face") and fetched == [selfie_path], (line, fetched)
