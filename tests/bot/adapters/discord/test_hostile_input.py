"""Hostile and careless input on Discord, end to end through discord.py and the loopback fake:
links that point inside the network, bodies that never end, names that are paths, names
longer than a message, and refusals that name Discord's own commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import AsyncIterator

import pytest

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.inference.media.encode import encode_frames
from tests.bot.adapters.conftest import template_frames
from tests.bot.adapters.discord.conftest import GUILD, DiscordWorld, final_response
from tests.fakes.discord_api import MIB, PERM_MANAGE_GUILD

NOT_FETCHED = "⚠️ I couldn't download that file; please try another one."
SWAP_INTO = "Swap my face into this"


class Listener:
    """A loopback TCP server standing for something inside the network: it counts the
    connections it gets and answers any request with a small GIF over plain HTTP."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Listener]:
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(Exception):
            self.requests.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(self.body) + self.body)
            await writer.drain()
        writer.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def small_gif(library) -> bytes:
    return encode_frames(template_frames(library, "shake")[:8], "gif", fps=12).data


async def swap_into_links(world: DiscordWorld, urls: list[str], selfie: bytes, user_id: int = 40) -> list[str]:
    """A member with a saved face (`selfie`) runs "Swap my face into this" on a message
    linking each URL (a gifv embed); the final line of each."""
    fake = world.fake
    alice, bob = fake.user(user_id, "alice"), fake.user(user_id + 1, "bob")
    fake.member(GUILD, alice)
    fake.member(GUILD, bob)
    await world.services.faces.save(Requester("discord", str(user_id), Scope("guild", "discord", str(GUILD))), selfie)
    lines = []
    for url in urls:
        posted = fake.message(world.channel, bob, url, embeds=[fake.link_embed(url)])
        menu = fake.message_context_menu(GUILD, world.channel, alice, SWAP_INTO, posted)
        lines.append((await final_response(fake, menu))["content"])
    return lines


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_link_that_redirects_inside_is_refused_and_the_inside_is_never_reached(discord_bot, small_gif, selfie_jpeg):
    async def main():
        async with Listener(small_gif).running() as inside:
            async with discord_bot() as world:
                fake = world.fake
                hop = fake.redirect(f"http://127.0.0.1:{inside.port}/secret.gif")
                lines = await swap_into_links(world, [hop, f"http://127.0.0.1:{inside.port}/direct.gif"], selfie_jpeg)
                hops = [r for r in fake.requests if r.get("kind") == "file" and r["path"].startswith("/links/")]
            return lines, inside.connections, hops

    lines, connections, hops = asyncio.run(main())
    assert connections == 0  # neither through the redirect nor straight: another loopback port is not trusted
    assert lines == [NOT_FETCHED, NOT_FETCHED]
    assert [h["status"] for h in hops] == [302]  # the redirect itself was fetched, its target refused


def test_a_huge_body_stops_at_the_limit_and_a_slow_one_at_the_deadline(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot(max_template_bytes=2 * MIB, download_total_s=2) as world:
            fake = world.fake
            huge = fake.streamed(bytes(64 * 1024), 1600)  # 100 MiB, chunked, no Content-Length
            slow = fake.streamed(b"GIF89a", 40, delay_s=0.5)  # 20 s of a trickle
            started = asyncio.get_running_loop().time()
            lines = await swap_into_links(world, [huge, slow], selfie_jpeg)
            seconds = asyncio.get_running_loop().time() - started
            await asyncio.sleep(0.5)  # the fake notices the hang-up
            sent = {r["path"]: r["sent"] for r in fake.requests if r.get("kind") == "file"}
            return lines, seconds, sent[huge.split(fake.http_base)[1]]

    lines, seconds, huge_sent = asyncio.run(main())
    assert huge_sent < 24 * MIB  # of 100 MiB: the limit, and what the sockets buffered before the hang-up
    assert seconds < 10  # the trickle is cut at the 2 s deadline, not read for its 20 s
    assert lines == ["⚠️ That file is too big; I can take files up to 2.0 MB. Send a smaller one.", NOT_FETCHED]


def test_refusals_are_the_same_line_whatever_failed(discord_bot, small_gif, caplog, selfie_jpeg):
    """A closed port, a host off the list and a missing file: one line, the same, and no
    answer tells an open port from a closed one."""
    closed = closed_port()

    async def main():
        async with Listener(small_gif).running() as off_list:
            async with discord_bot(download_loopback_origins=[f"http://127.0.0.1:{closed}"]) as world:
                fake = world.fake
                lines = await swap_into_links(world, [
                    f"http://127.0.0.1:{closed}/dance.gif",  # trusted, but nothing listens
                    f"https://localhost:{off_list.port}/dance.gif",  # localhost is not a media host
                    f"{fake.http_base}/external/1/gone.gif",  # a 404
                ], selfie_jpeg)
            return lines, off_list.connections

    lines, connections = asyncio.run(main())
    assert connections == 0
    assert errors_logged(caplog) == []
    assert lines == [NOT_FETCHED] * 3


def test_a_listed_name_on_a_loopback_address_is_refused_before_connecting(discord_bot, small_gif, selfie_jpeg):
    """Were "localhost" a media host, it still resolves to loopback: refused before any TLS,
    and plain http to a listed host is refused as well."""
    async def main():
        async with Listener(small_gif).running() as local:
            hosts = ["cdn.discordapp.com", "media.discordapp.net", "localhost"]
            async with discord_bot(download_hosts=hosts) as world:
                lines = await swap_into_links(world, [f"https://localhost:{local.port}/dance.gif",
                                                      f"http://localhost:{local.port}/dance.gif"], selfie_jpeg)
            return lines, local.connections

    lines, connections = asyncio.run(main())
    assert connections == 0
    assert lines == [NOT_FETCHED, NOT_FETCHED]


def test_files_named_dot_dot_get_an_answer(discord_bot, selfie_jpeg, small_gif, template_media):
    """A file called ".." (an attachment's name, a link's last segment) is never a path: a
    swap, or one clear refusal, and no server path in what the person reads."""
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice, bob, ada = fake.user(60, "alice"), fake.user(61, "bob"), fake.user(62, "ada")
            fake.member(GUILD, alice)
            fake.member(GUILD, bob)
            fake.member(GUILD, ada, PERM_MANAGE_GUILD)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            await final_response(fake, fake.slash_command(GUILD, world.channel, alice, "face set",
                                                          {"selfie": selfie}))
            dotted = fake.message(world.channel, bob, "look",
                                  attachments=[fake.attachment(world.channel["id"], small_gif, "..", "image/gif")])
            link = f"{fake.http_base}/external/1/.."
            linked = fake.message(world.channel, bob, link, embeds=[fake.link_embed(link)])
            clip = fake.attachment(world.channel["id"], template_media.read_bytes(), "..", "video/mp4")
            interactions = [fake.message_context_menu(GUILD, world.channel, alice, SWAP_INTO, dotted),
                            fake.message_context_menu(GUILD, world.channel, alice, SWAP_INTO, linked),
                            fake.slash_command(GUILD, world.channel, ada, "templates-admin add",
                                               {"file": clip, "name": "dots"})]
            swapped, refused, added = [await final_response(fake, i) for i in interactions]
            shown = [h["content"] for i in interactions for h in fake.original_history(i)]
            return swapped, refused, added, shown

    swapped, refused, added, shown = asyncio.run(main())
    assert not any("/tmp" in line or "memeswap-" in line or ".." in line for line in shown), shown
    assert swapped["content"] == "✅ Here's your meme!" and swapped["attachments"][0]["data"][:6] == b"GIF89a"
    assert refused["content"] == NOT_FETCHED
    assert added["content"] == "✅ Added “dots” for this server: `/swap template:dots`"


def test_a_name_longer_than_a_message_gets_one_short_line(discord_bot, template_media, caplog):
    huge = "a" * 3000

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            ada = fake.user(70, "ada")
            fake.member(GUILD, ada, PERM_MANAGE_GUILD)
            swap = fake.slash_command(GUILD, world.channel, ada, "swap", {"template": huge})
            remove = fake.slash_command(GUILD, world.channel, ada, "templates-admin remove", {"name": huge})
            clip = fake.attachment(world.channel["id"], template_media.read_bytes(), "party.mp4", "video/mp4")
            add = fake.slash_command(GUILD, world.channel, ada, "templates-admin add", {"file": clip, "name": huge})
            answers = [await final_response(fake, interaction) for interaction in (swap, remove, add)]
            downloads = [r for r in fake.requests if "party.mp4" in r["path"]]
            return [a["content"] for a in answers], downloads

    lines, downloads = asyncio.run(main())
    assert downloads == []  # the name is refused before the file is fetched
    assert errors_logged(caplog) == []
    shown = "'" + "a" * 40 + "…'"
    assert lines == [f"⚠️ Invalid template name {shown}: use 1-32 lowercase letters, digits and dashes, "
                     "starting with a letter or digit."] * 3


def test_refusals_on_discord_name_discords_commands(discord_bot, small_gif):
    """No saved face: /swap without a selfie, /face show and "Swap my face into this" say to use
    `/face set` (Telegram's bare /face and "then pick a template" do not exist here)."""
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            finn, bob = fake.user(80, "finn"), fake.user(81, "bob")
            fake.member(GUILD, finn)
            fake.member(GUILD, bob)
            swap = await final_response(fake, fake.slash_command(GUILD, world.channel, finn, "swap",
                                                                 {"template": "bounce"}))
            show = fake.slash_command(GUILD, world.channel, finn, "face show")
            await fake.wait_for(lambda: fake.callbacks(show))
            posted = fake.message(world.channel, bob, "look",
                                  attachments=[fake.attachment(world.channel["id"], small_gif, "dance.gif",
                                                               "image/gif")])
            menu = await final_response(fake, fake.message_context_menu(GUILD, world.channel, finn, SWAP_INTO,
                                                                        posted))
            return [swap["content"], fake.callbacks(show)[0]["data"]["content"], menu["content"]]

    lines = asyncio.run(main())
    for line in lines:
        assert "`/face set`" in line and not re.search(r"/face(?! set)", line), line
        assert "pick a template" not in line, line
