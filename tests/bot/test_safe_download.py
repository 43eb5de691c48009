"""The one hardened downloader: which URLs and addresses it takes, how it follows redirects,
and that every failure is the same neutral line (only "too big" says the limit). Servers are
loopback aiohttp apps; the Discord tests drive it through discord.py as well."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from yarl import URL

from memeswap.bot.safe_download import NOT_FETCHED, DownloadPolicy, SafeDownloader, parsed_origin, public_address
from memeswap.inference.errors import InputError

LISTED = ("cdn.discordapp.com", "media.discordapp.net", ".tenor.com", ".giphy.com")


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("127.8.9.10", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("239.255.255.250", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("2002:7f00:1::", False), ("64:ff9b::a00:1", False),
    # site-local IPv6 (Python 3.11 calls it global), and private IPv4 in every IPv6 form
    ("fec0::1", False), ("feff::1", False), ("::ffff:100.64.0.1", False), ("::ffff:169.254.169.254", False),
    ("::127.0.0.1", False), ("::8.8.8.8", False),  # IPv4-compatible: deprecated, never unwrapped
    ("2002:a9fe:a9fe::", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b:1::808:808", False),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False), ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", False),  # Teredo
    ("::ffff:8.8.8.8", True), ("2002:808:808::", True), ("64:ff9b::808:808", True),
    # this network, shared (CGNAT), IETF protocol assignments, benchmarking, future use, documentation
    ("0.1.2.3", False), ("100.127.255.254", False), ("192.0.0.9", False), ("192.0.0.170", False),
    ("198.18.0.1", False), ("198.19.255.254", False), ("241.2.3.4", False), ("192.0.2.1", False),
    ("2001:db8::1", False), ("3fff::1", False), ("fe80::1%eth0", False),
    ("not an address", False),
])
def test_only_public_addresses_are_connected_to(address, public):
    assert public_address(address) is public


@pytest.mark.parametrize("url, allowed", [
    ("https://cdn.discordapp.com/attachments/1/2/a.gif?ex=1&hm=2", True),
    ("https://media.discordapp.net/external/x/https/media.tenor.com/a.mp4", True),
    ("https://media.tenor.com/abc/tenor.gif", True),
    ("https://tenor.com/view/x.gif", True),
    ("https://media3.giphy.com/media/x/giphy.gif", True),
    ("https://CDN.discordapp.com./a.gif", True),
    ("https://cdn.discordapp.com:443/a.gif", True),
    ("https://cdn.discordapp.com:8443/a.gif", False),  # a listed host on port 443 only
    ("https://media.tenor.com:80/a.gif", False),
    ("http://cdn.discordapp.com/a.gif", False),  # https only
    ("ftp://cdn.discordapp.com/a.gif", False),
    ("https://discordapp.com/a.gif", False),  # an exact host covers no other name
    ("https://evil-tenor.com/a.gif", False),  # ".tenor.com" is a subdomain match, not a suffix of letters
    ("https://tenor.com.evil.example/a.gif", False),
    ("https://user:pw@cdn.discordapp.com/a.gif", False),
    ("https://8.8.8.8/a.gif", False),
    ("https://127.0.0.1:8443/a.gif", False),
    ("http://127.0.0.1:8080/a.gif", True),  # the trusted loopback origin, exactly
    ("https://127.0.0.1:8080/a.gif", False),  # another scheme on it
    ("http://127.0.0.1:8081/a.gif", False),  # another loopback port
    ("http://localhost:8080/a.gif", False),  # another name for it
    ("/relative/a.gif", False),
])
def test_urls_on_the_list_only(url, allowed):
    policy = DownloadPolicy(LISTED, frozenset({parsed_origin("http://127.0.0.1:8080")}))
    assert (policy.refusal(URL(url)) is None) is allowed


@pytest.mark.parametrize("origin", ["http://10.0.0.1:80", "http://127.0.0.1", "http://127.0.0.1:80/path",
                                    "http://example.com:80", "ws://127.0.0.1:80"])
def test_a_loopback_origin_is_exactly_that(origin):
    with pytest.raises(ValueError):
        parsed_origin(origin)


class Server:
    """A loopback aiohttp app whose handlers count what they were asked."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.hits: list[str] = []
        self.sent = 0
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Server]:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        try:
            yield self
        finally:
            await runner.cleanup()


def serving(routes: dict) -> Server:
    server = Server()

    def counted(handler):
        async def handle(request: web.Request) -> web.StreamResponse:
            server.hits.append(request.path)
            return await handler(request, server)
        return handle

    for path, handler in routes.items():
        server.app.router.add_get(path, counted(handler))
    return server


async def gif(request, server):
    return web.Response(body=b"GIF89a" + bytes(100), content_type="image/gif")


async def chunked_forever(request, server):
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        for _ in range(2000):
            await response.write(bytes(64 * 1024))
            server.sent += 64 * 1024
    return response


async def announced_too_big(request, server):
    response = web.StreamResponse(headers={"Content-Length": str(10 * 1024 * 1024)})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        for _ in range(160):
            await response.write(bytes(64 * 1024))
            server.sent += 64 * 1024
    return response


async def slow(request, server):
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, RuntimeError):
        for _ in range(100):
            await response.write(b"x")
            server.sent += 1
            await asyncio.sleep(0.3)
    return response


async def missing(request, server):
    return web.Response(status=404)


def redirect_to(location: str, status: int = 302):
    async def handle(request, server):
        return web.Response(status=status, headers={"Location": location.format(port=server.port)})
    return handle


def refused_line(error: pytest.ExceptionInfo) -> str:
    assert isinstance(error.value, InputError)
    return str(error.value)


def test_a_trusted_origin_is_fetched_and_redirects_on_it_followed():
    async def main():
        async with serving({"/a.gif": gif, "/hop": redirect_to("/a.gif", 301),
                            "/abs": redirect_to("http://127.0.0.1:{port}/hop", 307)}).running() as server:
            downloader = SafeDownloader(LISTED, loopback_origins=[server.origin])
            return await downloader.fetch(f"{server.origin}/abs", 1000), server.hits

    body, hits = asyncio.run(main())
    assert body == b"GIF89a" + bytes(100) and hits == ["/abs", "/hop", "/a.gif"]


def test_every_failure_is_the_same_neutral_line_and_off_list_hops_are_never_made():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]

    async def main():
        async with serving({"/secret": gif}).running() as internal, \
                serving({"/a.gif": gif, "/missing": missing, "/loop": redirect_to("/loop"),
                         "/inside": redirect_to(f"http://127.0.0.1:{internal.port}/secret"),
                         "/localhost": redirect_to("https://localhost:{port}/a.gif"),
                         "/plain": redirect_to("http://cdn.discordapp.com/a.gif")}).running() as server:
            downloader = SafeDownloader([*LISTED, "localhost"], timeout_s=1.0,
                                        loopback_origins=[server.origin, f"http://127.0.0.1:{closed_port}"])
            lines = {}
            for case, url in {
                "closed port": f"http://127.0.0.1:{closed_port}/a.gif",
                "off the list": f"https://cdn.discordapp.example/{server.port}/a.gif",
                "plain http": "http://cdn.discordapp.com/a.gif",
                "listed name on loopback": f"https://localhost:{internal.port}/secret",
                "another loopback port": f"http://127.0.0.1:{internal.port}/secret",
                "redirect inside": f"{server.origin}/inside",
                "redirect to a listed name on loopback": f"{server.origin}/localhost",
                "redirect to plain http": f"{server.origin}/plain",
                "redirect loop": f"{server.origin}/loop",
                "not found": f"{server.origin}/missing",
                "not a URL": "http://[::1",
            }.items():
                with pytest.raises(InputError) as refused:
                    await downloader.fetch(url, 1000)
                lines[case] = refused_line(refused)
            return lines, internal.hits, server.hits.count("/loop")

    lines, internal_hits, loops = asyncio.run(main())
    assert set(lines.values()) == {NOT_FETCHED}, lines
    assert internal_hits == []  # never connected to, let alone asked
    assert loops == 4  # the first request and three redirects, no more


def test_bodies_over_the_limit_stop_at_limit_plus_one_byte():
    async def main():
        async with serving({"/endless": chunked_forever, "/announced": announced_too_big}).running() as server:
            downloader = SafeDownloader(LISTED, loopback_origins=[server.origin])
            lines = []
            for path in ("/endless", "/announced"):
                with pytest.raises(InputError) as refused:
                    await downloader.fetch(f"{server.origin}{path}", 1024 * 1024)
                lines.append(refused_line(refused))
            await asyncio.sleep(0.5)  # let the server notice the hang-up
            return lines, server.sent

    lines, sent = asyncio.run(main())
    assert lines == ["That file is too big; I can take files up to 1.0 MB. Send a smaller one"] * 2
    assert sent < 32 * 1024 * 1024  # of 135 MB offered: the limits, plus what the sockets buffered


def test_a_slow_body_runs_into_the_timeouts():
    async def main():
        async with serving({"/slow": slow}).running() as server:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(InputError) as per_read:
                await SafeDownloader(LISTED, timeout_s=0.1, total_s=5, loopback_origins=[server.origin]).fetch(
                    f"{server.origin}/slow", 1000)
            with pytest.raises(InputError) as in_all:
                await SafeDownloader(LISTED, timeout_s=5, total_s=1, loopback_origins=[server.origin]).fetch(
                    f"{server.origin}/slow", 1000)
            return refused_line(per_read), refused_line(in_all), loop.time() - started

    per_read, in_all, seconds = asyncio.run(main())
    assert per_read == in_all == NOT_FETCHED and seconds < 3


def test_proxies_in_the_environment_are_never_used(monkeypatch):
    """A proxy connects wherever it is asked, past every check here: with one named in each
    variable aiohttp knows, the fetch still goes straight to the server."""
    proxied = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxied.append(await reader.read(200))
        writer.close()

    async def main():
        proxy_server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        proxy_url = f"http://127.0.0.1:{proxy_server.sockets[0].getsockname()[1]}"
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        try:
            async with serving({"/a.gif": gif}).running() as server:
                body = await SafeDownloader(LISTED, timeout_s=2, loopback_origins=[server.origin]).fetch(
                    f"{server.origin}/a.gif", 1000)
                return body, server.hits
        finally:
            proxy_server.close()
            await proxy_server.wait_closed()

    body, hits = asyncio.run(main())
    assert proxied == []
    assert body == b"GIF89a" + bytes(100) and hits == ["/a.gif"]
