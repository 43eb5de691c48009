"""The real discord.py (commands.Bot, AutoShardedBot, app_commands) against the FakeDiscord server."""

import asyncio
import gc
import io
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakes.discord_api import (
    DEFAULT_MEMBER_PERMISSIONS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MIB,
    PERM_MANAGE_GUILD,
    FakeDiscord,
)

GUILD, GUILD_T2, CHANNEL, CHANNEL_T2 = 1001 << 22, 1002 << 22, 5001, 5002
TEMPLATES = [f"{animal}-{n}" for animal in ("cat", "dog", "capybara", "cow") for n in range(10)]
SHORT_ACK_S, SHORT_TTL_S = 0.5, 1.0


def png(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buf, "PNG")
    return buf.getvalue()


def gif(width: int = 64, height: int = 48, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (width, height), (40 * i, 90, 200)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return buf.getvalue()


def render_meme(face: bytes, template: str) -> bytes:
    """What the test bot 'renders': a GIF whose size depends on the face and the template."""
    return gif(32 + len(face) % 32, 16 + len(template), frames=2)


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run(main: Callable[[], Awaitable[None]], allowed_errors: tuple[str, ...] = ()) -> None:
    """asyncio.run(main()) and then fail on loop errors (e.g. "Unclosed client session"), tasks left
    running, or errors discord.py logged (exceptions in commands) other than `allowed_errors`."""
    log = _ErrorLog()
    logging.getLogger("discord").addHandler(log)

    async def checked() -> None:
        loop_errors: list[str] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(str(ctx.get("message"))))
        await main()
        await asyncio.sleep(0.05)
        gc.collect()
        await asyncio.sleep(0)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert leftover == []
        assert loop_errors == []

    try:
        asyncio.run(checked())
    finally:
        logging.getLogger("discord").removeHandler(log)
    assert [m for m in log.messages if not any(a in m for a in allowed_errors)] == []


class MemeCog(commands.Cog):
    """The commands a memeswap adapter would register: /meme, /face set, /settings, the Swap face menu."""

    face = app_commands.Group(name="face", description="Manage your saved face")

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.seen: defaultdict[str, list[Any]] = bot.seen
        self.swap_menu = app_commands.ContextMenu(name="Swap face", callback=self.swap_face)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.swap_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.swap_menu.name, type=self.swap_menu.type)

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        self.seen["resumed"].append(True)

    @app_commands.command(name="meme", description="Swap your face into a meme")
    @app_commands.describe(face="A photo of your face", template="The meme template")
    async def meme(self, interaction: discord.Interaction, face: discord.Attachment, template: str) -> None:
        await interaction.response.defer(thinking=True)
        data = await face.read()
        self.seen["meme"].append({
            "bytes": data, "filesize_limit": interaction.filesize_limit, "guild": interaction.guild,
            "content_type": face.content_type, "size": (face.width, face.height), "user": interaction.user.id,
        })
        await interaction.edit_original_response(content=f"Analysing {face.filename} ({len(data)} bytes)")
        await interaction.edit_original_response(content=f"Rendering {template}")
        await interaction.followup.send("Here you go", file=discord.File(io.BytesIO(render_meme(data, template)),
                                                                         "meme.gif"))

    @meme.autocomplete("template")
    async def template_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        self.seen["autocomplete"].append(current)
        return [app_commands.Choice(name=t, value=t) for t in TEMPLATES if current in t][:25]

    @face.command(name="set", description="Save the face used for your memes")
    async def face_set(self, interaction: discord.Interaction, photo: discord.Attachment) -> None:
        data = await photo.read()
        thumb = io.BytesIO()
        Image.open(io.BytesIO(data)).resize((16, 16)).save(thumb, "PNG")
        await interaction.response.send_message("Face saved", file=discord.File(io.BytesIO(thumb.getvalue()),
                                                                                "thumb.png"))
        original = await interaction.original_response()
        larger = io.BytesIO()
        Image.open(io.BytesIO(data)).resize((32, 32)).save(larger, "PNG")
        await interaction.edit_original_response(content="Face saved (2 sizes)", attachments=[
            *original.attachments, discord.File(io.BytesIO(larger.getvalue()), "thumb32.png")])

    @app_commands.command(name="settings", description="Server settings for memes")
    @app_commands.default_permissions(manage_guild=True)
    async def settings(self, interaction: discord.Interaction) -> None:
        member = interaction.user
        assert isinstance(member, discord.Member)
        self.seen["settings"].append({"manage_guild": interaction.permissions.manage_guild,
                                      "cached": member.guild_permissions.manage_guild,
                                      "app_attach": interaction.app_permissions.attach_files})
        await interaction.response.send_message(f"manage_guild={interaction.permissions.manage_guild}",
                                                ephemeral=True)

    async def swap_face(self, interaction: discord.Interaction, message: discord.Message) -> None:
        media = []
        for att in message.attachments:
            media.append({"filename": att.filename, "content_type": att.content_type, "size": (att.width, att.height),
                          "bytes": await att.read()})
        for embed in message.embeds:
            url = embed.video.url or embed.thumbnail.url or embed.url
            assert url is not None
            media.append({"embed": embed.type, "url": url, "bytes": await interaction.client.http.get_from_cdn(url)})
        self.seen["swap"].append({"message_id": message.id, "author": message.author.id, "media": media})
        await interaction.response.send_message(f"Swapping {len(media)} item(s)", ephemeral=True)


class EdgeCog(commands.Cog):
    """Commands that run into Discord's limits: upload size, double ack, late ack, expired token, 429s."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.seen: defaultdict[str, list[Any]] = bot.seen
        self.profile_menu = app_commands.ContextMenu(name="Profile meme", callback=self.profile_meme)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.profile_menu)

    async def profile_meme(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"Making a meme of {member.display_name}")
        temp = await interaction.followup.send("temporary", wait=True)
        await temp.delete()
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel)
        posted = await channel.send("draft")
        await posted.edit(content="final")
        self.seen["profile"].append((type(member).__name__, member.id, member.guild_permissions.manage_guild))

    def _record(self, key: str, err: discord.HTTPException) -> None:
        self.seen[key].append((type(err).__name__, err.status, err.code))

    @app_commands.command(name="big", description="Upload just over the limit, then exactly at it")
    async def big(self, interaction: discord.Interaction) -> None:
        limit = interaction.filesize_limit

        def blob(size: int, name: str) -> discord.File:
            return discord.File(io.BytesIO(b"\x00" * size), name)

        try:
            await interaction.response.send_message(file=blob(limit + 1, "big.gif"))
        except discord.HTTPException as err:
            self._record("big", err)
        await interaction.response.defer()
        for send in (interaction.followup.send, interaction.channel.send):
            try:
                await send(file=blob(limit + 1, "big.gif"))
            except discord.HTTPException as err:
                self._record("big", err)
        await interaction.followup.send(file=blob(limit, "fits.bin"))

    @app_commands.command(name="twice", description="Acknowledge twice")
    async def twice(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:  # a second InteractionResponse bypasses discord.py's local guard, like a second worker would
            await discord.InteractionResponse(interaction).send_message("again")
        except discord.HTTPException as err:
            self._record("twice", err)
        await interaction.followup.send("done once")

    @app_commands.command(name="late", description="Acknowledge after the deadline")
    async def late(self, interaction: discord.Interaction) -> None:
        await asyncio.sleep(SHORT_ACK_S + 0.1)
        try:
            await interaction.response.defer()
        except discord.HTTPException as err:
            self._record("late", err)

    @app_commands.command(name="expire", description="Follow up after the token expired")
    async def expire(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await asyncio.sleep(SHORT_TTL_S + 0.1)
        try:
            await interaction.followup.send("too late")
        except discord.HTTPException as err:
            self._record("expire", err)
            await interaction.channel.send(f"{interaction.user.mention} your meme is ready")

    @app_commands.command(name="echo", description="Reply, follow up and post in the channel")
    async def echo(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message("working")
        started = time.monotonic()
        await interaction.followup.send(text)
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel)
        async with channel.typing():
            posted = await channel.send(f"channel: {text}")
        fetched = await channel.fetch_message(posted.id)
        self.seen["echo"].append((time.monotonic() - started, fetched.content))

    @app_commands.command(name="vote", description="A button and a modal")
    async def vote(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)  # a timeout task would outlive the bot
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(label="Yes", custom_id="vote:yes")

        async def clicked(click: discord.Interaction) -> None:
            self.seen["clicked"].append(click.data)
            await click.response.edit_message(content=f"{click.user.name} voted yes", view=None)

        button.callback = clicked
        view.add_item(button)
        await interaction.response.send_message("Vote?", view=view)

    @app_commands.command(name="feedback", description="Open a modal")
    async def feedback(self, interaction: discord.Interaction) -> None:
        modal = discord.ui.Modal(title="Feedback", custom_id="feedback-modal", timeout=None)
        modal.add_item(discord.ui.TextInput(label="How was it?", custom_id="how"))
        await interaction.response.send_modal(modal)


class _TestBot:
    def __init__(self, *cogs: type[commands.Cog], **options: Any) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05,
                         help_command=None, **options)
        self.seen: defaultdict[str, list[Any]] = defaultdict(list)
        self.cog_types = cogs

    async def setup_hook(self) -> None:
        for cog in self.cog_types:
            await self.add_cog(cog(self))


class MemeBot(_TestBot, commands.Bot):
    pass


class ShardedMemeBot(_TestBot, commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py waits 5 s between shard IDENTIFYs by default


def world(fake: FakeDiscord) -> tuple[dict, dict, dict, dict]:
    """Two guilds (tier 0 and tier 2) with a channel each, and users alice and bob."""
    fake.guild(GUILD, "Meme Lab", premium_tier=0)
    fake.guild(GUILD_T2, "Boosted", premium_tier=2)
    ch = fake.text_channel(GUILD, CHANNEL, "memes")
    ch2 = fake.text_channel(GUILD_T2, CHANNEL_T2, "memes")
    return ch, ch2, fake.user(7, "alice"), fake.user(8, "bob")


def test_login_ready_guilds_heartbeat_resume_and_wrong_token() -> None:
    async def main() -> None:
        async with FakeDiscord(heartbeat_interval_ms=50) as fake:
            ch, _, alice, _ = world(fake)
            fake.member(GUILD, alice)
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                guild = bot.get_guild(GUILD)
                assert guild is not None and (guild.name, guild.premium_tier) == ("Meme Lab", 0)
                assert bot.get_guild(GUILD_T2).premium_tier == 2
                assert guild.get_channel(CHANNEL).name == "memes"
                assert guild.me is not None and guild.me.guild_permissions.attach_files
                assert guild.member_count == 2 and guild.get_member(7) is None  # no presences intent: only the bot
                assert bot.user is not None and bot.user.id == fake.bot_id and bot.application_id == fake.app_id
                assert await bot.is_owner(await bot.fetch_user(fake.owner_id))
                assert not await bot.is_owner(await bot.fetch_user(7))
                await fake.wait_for(lambda: fake.heartbeat_acks() >= 3, timeout=5)
                assert bot.latency < 1.0

                [conn] = fake.gateway_connections
                assert conn["query"] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
                [ident] = fake.identifies
                assert ident["intents"] == discord.Intents.default().value and ident["shard"] is None
                assert [e["t"] for e in fake.gateway_events] == ["READY", "GUILD_CREATE", "GUILD_CREATE"]
                ready = fake.gateway_events[0]["d"]
                assert ready["guilds"] == [{"id": str(GUILD), "unavailable": True},
                                           {"id": str(GUILD_T2), "unavailable": True}]

                late = fake.guild(1003 << 22, "Joined later", premium_tier=3)
                await fake.wait_for(lambda: bot.get_guild(1003 << 22) is not None)
                assert bot.get_guild(1003 << 22).filesize_limit == 100 * MIB
                assert late["premium_tier"] == 3

                fake.request_reconnect(0)
                await fake.wait_for(lambda: bot.seen["resumed"] == [True])
                assert [c["close_code"] for c in fake.gateway_connections] == [4000, None]
                assert len(fake.identifies) == 1 and fake.gateway_events[-1]["t"] == "RESUMED"
            # discord.py's poll loop closes with 4000 before close() sends 1000; either ends the connection
            last = fake.gateway_connections[-1]
            assert not last["open"] and last["close_code"] in (1000, 4000)

            wrong = MemeBot()
            with fake.patch_client():
                with pytest.raises(discord.LoginFailure):
                    await wrong.login("not-the-token")
            await wrong.close()
            assert fake.requests[-1]["path"] == "/users/@me" and fake.requests[-1]["status"] == 401
            assert fake.unknown_routes == [] and fake.errors == []
        assert discord.http.Route.BASE == "https://discord.com/api/v10"

    run(main)


def test_command_sync_global_and_guild() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, _ = world(fake)
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                assert fake.command_creates == 0 and fake.synced_commands() == []
                synced = await bot.tree.sync()
                assert fake.command_syncs == 1 and fake.command_creates == 4
                stored = {c["name"]: c for c in fake.synced_commands()}
                assert set(stored) == {"meme", "face", "settings", "Swap face"}
                meme = stored["meme"]
                assert [(o["name"], o["type"], o.get("required", False), o.get("autocomplete", False))
                        for o in meme["options"]] == [("face", 11, True, False), ("template", 3, True, True)]
                assert stored["face"]["options"][0]["type"] == 1 and stored["face"]["options"][0]["name"] == "set"
                assert stored["face"]["options"][0]["options"][0]["type"] == 11
                assert (stored["Swap face"]["type"], stored["Swap face"]["description"]) == (3, "")
                assert stored["settings"]["default_member_permissions"] == str(
                    discord.Permissions(manage_guild=True).value)
                assert stored["meme"]["default_member_permissions"] is None
                assert {c.name: c.id for c in synced} == {n: int(c["id"]) for n, c in stored.items()}

                again = await bot.tree.sync()
                assert fake.command_syncs == 2 and fake.command_creates == 4
                assert sorted(c.id for c in again) == sorted(c.id for c in synced)
                fetched = await bot.tree.fetch_commands()
                assert {c.name for c in fetched} == set(stored)

                bot.tree.copy_global_to(guild=discord.Object(GUILD))
                in_guild = await bot.tree.sync(guild=discord.Object(GUILD))
                assert fake.command_syncs == 3 and fake.command_creates == 8
                assert {c["guild_id"] for c in fake.synced_commands(GUILD)} == {str(GUILD)}
                assert {c.guild_id for c in in_guild} == {GUILD}
                assert fake.synced_commands(GUILD_T2) == []

                fake.permit_command(GUILD, "settings", alice)  # Manage Server by default; an admin let alice in
                inter = fake.slash_command(GUILD, ch, alice, "settings")
                assert inter["data"]["guild_id"] == str(GUILD)
                assert inter["data"]["id"] == {c["name"]: c["id"] for c in fake.synced_commands(GUILD)}["settings"]
                await fake.wait_for_ack(inter)

                with pytest.raises(discord.HTTPException) as caught:
                    await bot.http.bulk_upsert_global_commands(fake.app_id, payload=[
                        {"name": "Bad Name", "description": "x", "type": 1}])
                assert (caught.value.status, caught.value.code) == (400, 50035)
                assert fake.command_syncs == 3
            assert fake.unknown_routes == [] and fake.errors == []

    run(main)


def test_slash_command_defer_read_edit_followup_and_limits() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, ch2, alice, bob = world(fake)
            dm = fake.dm_channel(alice)
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                face = png(80, 60)
                cases = [(GUILD, ch, 10 * MIB), (GUILD_T2, ch2, 50 * MIB), (None, dm, 10 * MIB)]
                inters = []
                for guild, channel, _ in cases:
                    att = fake.attachment(int(channel["id"]), face, "face.png", "image/png")
                    assert (att["width"], att["height"], att["size"]) == (80, 60, len(face))
                    inters.append(fake.slash_command(guild, channel, alice, "meme", {"face": att, "template": "cat-3"}))
                await fake.wait_for(lambda: all(len(fake.followups(i)) == 1 for i in inters))

                for inter, (_, _, limit) in zip(inters, cases):
                    assert inter["attachment_size_limit"] == limit
                    [callback] = fake.callbacks(inter)
                    assert (callback["type"], callback["data"], callback["status"]) == (5, None, 200)
                    assert callback["with_response"] is True
                    latency = fake.ack_latency(inter)
                    assert latency is not None and latency < 3.0
                    history = fake.original_history(inter)
                    assert [h["content"] for h in history] == [
                        "", f"Analysing face.png ({len(face)} bytes)", "Rendering cat-3"]
                    assert history[0]["flags"] & FLAG_LOADING and not history[-1]["flags"] & FLAG_LOADING
                    assert fake.original_response(inter)["content"] == "Rendering cat-3"
                    [followup] = fake.followups(inter)
                    assert followup["content"] == "Here you go"
                    [meme] = followup["attachments"]
                    assert meme["filename"] == "meme.gif" and meme["content_type"] == "image/gif"
                    assert meme["data"] == fake.file_bytes(meme) == render_meme(face, "cat-3")

                seen = bot.seen["meme"]
                assert [s["filesize_limit"] for s in seen] == [10 * MIB, 50 * MIB, 10 * MIB]
                assert [s["guild"] and s["guild"].filesize_limit for s in seen] == [10 * MIB, 50 * MIB, None]
                assert all(s["bytes"] == face and s["size"] == (80, 60) for s in seen)
                assert {s["content_type"] for s in seen} == {"image/png"}

                photo = fake.attachment(CHANNEL, png(40, 40), "me.png", "image/png")
                saved = fake.slash_command(GUILD, ch, bob, "face set", {"photo": photo})
                assert saved["data"]["options"] == [{"name": "set", "type": 1, "options": [
                    {"name": "photo", "type": 11, "value": photo["id"]}]}]
                await fake.wait_for(lambda: len(fake.original_history(saved)) == 2)
                [callback] = fake.callbacks(saved)
                assert callback["type"] == 4 and list(callback["files"]) == ["thumb.png"]
                first, edited = fake.original_history(saved)
                [thumb] = first["attachments"]
                assert first["content"] == "Face saved" and (thumb["width"], thumb["height"]) == (16, 16)
                assert thumb["data"] == callback["files"]["thumb.png"]
                assert [(a["id"], a["filename"], a["width"]) for a in edited["attachments"]] == [
                    (thumb["id"], "thumb.png", 16), (edited["attachments"][1]["id"], "thumb32.png", 32)]
                assert edited["edited_timestamp"] is not None and fake.original_response(saved) == edited
                assert [r["method"] for r in fake.requests if r["path"].endswith("/messages/@original")][-2:] == [
                    "GET", "PATCH"]
                shown = fake.channel_messages(CHANNEL, include_interactions=True)
                assert [m["content"] for m in shown] == ["Rendering cat-3", "Here you go", "Face saved (2 sizes)"]
            assert fake.unknown_routes == [] and fake.errors == []

    run(main)


def test_upload_over_the_limit_is_rejected_with_413() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, ch2, alice, _ = world(fake)
            bot = MemeBot(EdgeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                small = fake.slash_command(GUILD, ch, alice, "big")
                await fake.wait_for(lambda: len(fake.followups(small)) == 1)
                assert bot.seen["big"] == [("HTTPException", 413, 40005)] * 3
                rejected, accepted = fake.callbacks(small)
                assert (rejected["status"], rejected["code"], accepted["status"]) == (413, 40005, 200)
                [fits] = fake.followups(small)[0]["attachments"]
                assert fits["size"] == 10 * MIB
                assert fake.channel_messages(CHANNEL) == []
                big_posts = [r for r in fake.requests if r["files"] and r["status"] == 413]
                assert [r["path"].split("/")[1] for r in big_posts] == ["interactions", "webhooks", "channels"]

                bot.seen.clear()
                boosted = fake.slash_command(GUILD_T2, ch2, alice, "big")
                await fake.wait_for(lambda: len(fake.followups(boosted)) == 1, timeout=20)
                assert bot.seen["big"] == [("HTTPException", 413, 40005)] * 3
                assert fake.followups(boosted)[0]["attachments"][0]["size"] == 50 * MIB
            assert fake.errors == []

    run(main)


def test_autocomplete_answers_at_most_25_choices() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, _ = world(fake)
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                typed = fake.autocomplete(GUILD, ch, alice, "meme", {"template": "ca"}, focused="template")
                assert typed["type"] == 4 and typed["data"]["options"] == [
                    {"name": "template", "type": 3, "value": "ca", "focused": True}]
                choices = await fake.autocomplete_choices(typed)
                assert [c["name"] for c in choices] == [t for t in TEMPLATES if "ca" in t]
                assert all(c["name"] == c["value"] for c in choices)

                everything = fake.autocomplete(GUILD, ch, alice, "meme", {"template": ""}, focused="template")
                choices = await fake.autocomplete_choices(everything)
                assert len(choices) == 25 and choices[0]["value"] == "cat-0"
                assert bot.seen["autocomplete"] == ["ca", ""]
                assert [c["type"] for c in fake.callbacks(everything)] == [8]
                assert fake.original_response(everything) is None

                def too_many(interaction: discord.Interaction, current: str) -> Any:
                    async def answer() -> list[app_commands.Choice[str]]:
                        return [app_commands.Choice(name=t, value=t) for t in TEMPLATES[:30]]
                    return answer()

                cog = bot.get_cog("MemeCog")
                cog.meme._params["template"].autocomplete = too_many
                rejected = fake.autocomplete(GUILD, ch, alice, "meme", {"template": "c"}, focused="template")
                await fake.wait_for(lambda: fake.callbacks(rejected) != [])
                [attempt] = fake.callbacks(rejected)
                assert (attempt["status"], attempt["code"], len(attempt["data"]["choices"])) == (400, 50035, 30)
                assert fake.choices(rejected) is None
            assert fake.errors == []

    run(main, allowed_errors=("Ignoring exception in autocomplete",))


def test_message_context_menu_gets_message_with_gif() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, bob = world(fake)
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                dance = gif(64, 48, frames=4)
                att = fake.attachment(CHANNEL, dance, "dance.gif", "image/gif")
                posted = fake.message(ch, bob, "look at this", attachments=[att])
                inter = fake.message_context_menu(GUILD, ch, alice, "Swap face", posted)
                assert inter["data"]["type"] == 3 and inter["data"]["target_id"] == posted["id"]
                await fake.wait_for(lambda: len(bot.seen["swap"]) == 1)
                [swap] = bot.seen["swap"]
                assert (swap["message_id"], swap["author"]) == (int(posted["id"]), 8)
                assert swap["media"] == [{"filename": "dance.gif", "content_type": "image/gif", "size": (64, 48),
                                          "bytes": dance}]
                [callback] = fake.callbacks(inter)
                assert callback["type"] == 4 and callback["data"]["flags"] == FLAG_EPHEMERAL
                assert callback["data"]["content"] == "Swapping 1 item(s)"

                party = gif(30, 20)
                linked = fake.message(ch, bob, "https://fake.example/party",
                                      embeds=[fake.media_embed(party, "party.gif", "gifv")])
                second = fake.message_context_menu(GUILD, ch, alice, "Swap face", linked)
                await fake.wait_for(lambda: len(bot.seen["swap"]) == 2)
                [media] = bot.seen["swap"][1]["media"]
                assert media["embed"] == "gifv" and media["url"].startswith(fake.http_base)
                assert media["bytes"] == party
                assert fake.original_response(second)["flags"] & FLAG_EPHEMERAL
                assert fake.channel_messages(CHANNEL, include_interactions=True) == []
                assert [m["content"] for m in fake.channel_messages(CHANNEL, include_users=True)] == [
                    "look at this", "https://fake.example/party"]
            assert fake.unknown_routes == [] and fake.errors == []

    run(main)


def test_permissions_flow_from_the_payload() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, _, _ = world(fake)
            carol, dave = fake.user(21, "carol"), fake.user(22, "dave")
            plain = fake.member(GUILD, carol, DEFAULT_MEMBER_PERMISSIONS)
            admin = fake.member(GUILD, dave, DEFAULT_MEMBER_PERMISSIONS | PERM_MANAGE_GUILD)
            assert int(plain["permissions"]) & PERM_MANAGE_GUILD == 0
            assert int(admin["permissions"]) & PERM_MANAGE_GUILD
            bot = MemeBot(MemeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                [settings] = [c for c in fake.synced_commands() if c["name"] == "settings"]
                assert int(settings["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
                with pytest.raises(PermissionError, match="needs permissions"):  # Discord does not offer it
                    fake.slash_command(GUILD, ch, carol, "settings")
                fake.permit_command(GUILD, "settings", carol)  # an admin's override in Integrations
                first = fake.slash_command(GUILD, ch, carol, "settings")
                second = fake.slash_command(GUILD, ch, dave, "settings")
                await fake.wait_for(lambda: len(bot.seen["settings"]) == 2)
                by_user = {s["manage_guild"] for s in bot.seen["settings"]}
                assert by_user == {False, True}
                assert sorted(bot.seen["settings"], key=lambda s: s["manage_guild"]) == [
                    {"manage_guild": False, "cached": False, "app_attach": True},
                    {"manage_guild": True, "cached": True, "app_attach": True}]
                await fake.wait_for(lambda: bool(fake.original_response(first) and fake.original_response(second)))
                assert fake.original_response(first)["content"] == "manage_guild=False"
                assert fake.original_response(second)["content"] == "manage_guild=True"
            assert fake.errors == []

    run(main)


def test_double_ack_late_ack_and_expired_token_fallback() -> None:
    async def main() -> None:
        async with FakeDiscord(ack_deadline_s=SHORT_ACK_S, token_ttl_s=SHORT_TTL_S) as fake:
            ch, _, alice, _ = world(fake)
            bot = MemeBot(EdgeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                twice = fake.slash_command(GUILD, ch, alice, "twice")
                late = fake.slash_command(GUILD, ch, alice, "late")
                expire = fake.slash_command(GUILD, ch, alice, "expire")
                await fake.wait_for(lambda: len(bot.seen["expire"]) == 1 and len(fake.channel_messages(CHANNEL)) == 1)
                await fake.wait_for(lambda: len(bot.seen["late"]) == 1 and len(fake.followups(twice)) == 1)

                assert bot.seen["twice"] == [("HTTPException", 400, 40060)]
                assert [(c["type"], c["status"], c["code"]) for c in fake.callbacks(twice)] == [
                    (5, 200, None), (4, 400, 40060)]
                assert fake.followups(twice)[0]["content"] == "done once"

                assert bot.seen["late"] == [("NotFound", 404, 10062)]
                [attempt] = fake.callbacks(late)
                assert attempt["latency_s"] > SHORT_ACK_S and fake.ack_latency(late) is None

                assert bot.seen["expire"] == [("HTTPException", 401, 50027)]
                assert fake.followups(expire) == []
                [fallback] = fake.channel_messages(CHANNEL)
                assert fallback["content"] == "<@7> your meme is ready"
                assert fallback["author"]["id"] == str(fake.bot_id)
            assert fake.errors == []

    run(main)


def test_rate_limited_followup_is_retried_once() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, _ = world(fake)
            bot = MemeBot(EdgeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                fake.fail_next("POST", "/webhooks/*", retry_after=0.2)
                fake.fail_next("POST", "/channels/*/messages", retry_after=0.1, global_=True)
                inter = fake.slash_command(GUILD, ch, alice, "echo", {"text": "hi"})
                await fake.wait_for(lambda: len(bot.seen["echo"]) == 1)
                assert [m["content"] for m in fake.followups(inter)] == ["hi"]
                assert [m["content"] for m in fake.channel_messages(CHANNEL)] == ["channel: hi"]
                webhook_posts = [r["status"] for r in fake.requests if r["path"].startswith("/webhooks/")]
                channel_posts = [r["status"] for r in fake.requests if r["path"] == f"/channels/{CHANNEL}/messages"]
                assert webhook_posts == [429, 200] and channel_posts == [429, 200]
                [(elapsed, fetched)] = bot.seen["echo"]
                assert elapsed >= 0.3 and fetched == "channel: hi"
                assert ("POST", f"/channels/{CHANNEL}/typing", 204) in [
                    (r["method"], r["path"], r["status"]) for r in fake.requests]
            assert fake.errors == []

    run(main)


def test_auto_sharded_bot_gets_each_guild_on_its_shard() -> None:
    async def main() -> None:
        async with FakeDiscord(shard_count=2) as fake:
            on0, on1 = FakeDiscord.guild_id_on_shard(0, 2), FakeDiscord.guild_id_on_shard(1, 2)
            fake.guild(on0, "Shard zero")
            fake.guild(on1, "Shard one", premium_tier=2)
            ch1 = fake.text_channel(on1, 6001, "memes")
            alice = fake.user(7, "alice")
            bot = ShardedMemeBot(MemeCog)
            async with fake.running(bot):
                assert bot.shard_count == 2
                assert sorted(s["shard"] for s in fake.identifies) == [[0, 2], [1, 2]]
                creates = {e["d"]["id"]: e["shard"] for e in fake.gateway_events if e["t"] == "GUILD_CREATE"}
                assert creates == {str(on0): [0, 2], str(on1): [1, 2]}
                assert (bot.get_guild(on0).shard_id, bot.get_guild(on1).shard_id) == (0, 1)
                assert {r["path"] for r in fake.requests} >= {"/gateway/bot", "/users/@me"}

                await bot.tree.sync()
                face = png()
                att = fake.attachment(6001, face, "face.png", "image/png")
                inter = fake.slash_command(on1, ch1, alice, "meme", {"face": att, "template": "dog-1"})
                await fake.wait_for(lambda: len(fake.followups(inter)) == 1)
                [event] = [e for e in fake.gateway_events if e["t"] == "INTERACTION_CREATE"]
                assert event["shard"] == [1, 2]
                [seen] = bot.seen["meme"]
                assert seen["guild"].shard_id == 1 and seen["filesize_limit"] == 50 * MIB
            assert fake.unknown_routes == [] and fake.errors == []

    run(main)


def test_button_update_and_modal_callbacks() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, bob = world(fake)
            bot = MemeBot(EdgeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                vote = fake.slash_command(GUILD, ch, alice, "vote")
                await fake.wait_for(lambda: fake.original_response(vote) is not None)
                message = fake.original_response(vote)
                assert message["components"][0]["components"][0]["custom_id"] == "vote:yes"
                click = fake.press_button(GUILD, ch, bob, message, "vote:yes")
                await fake.wait_for(lambda: fake.callbacks(click) != [])
                assert [c["type"] for c in fake.callbacks(click)] == [7]
                assert [(m["content"], m["components"]) for m in fake.original_history(vote)] == [
                    ("Vote?", message["components"]), ("bob voted yes", [])]
                assert bot.seen["clicked"][0]["custom_id"] == "vote:yes"

                feedback = fake.slash_command(GUILD, ch, alice, "feedback")
                await fake.wait_for(lambda: fake.modal(feedback) is not None)
                modal = fake.modal(feedback)
                assert (modal["custom_id"], modal["title"]) == ("feedback-modal", "Feedback")
                assert fake.callbacks(feedback)[0]["type"] == 9
            assert fake.errors == []

    run(main)


def test_user_context_menu_followup_delete_and_channel_edit() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            ch, _, alice, bob = world(fake)
            fake.member(GUILD, bob, DEFAULT_MEMBER_PERMISSIONS | PERM_MANAGE_GUILD, nick="Bobby")
            bot = MemeBot(EdgeCog)
            async with fake.running(bot):
                await bot.tree.sync()
                assert [c["type"] for c in fake.synced_commands() if c["name"] == "Profile meme"] == [2]
                inter = fake.user_context_menu(GUILD, ch, alice, "Profile meme", bob)
                assert inter["data"]["resolved"]["members"][str(8)]["permissions"]
                await fake.wait_for(lambda: len(bot.seen["profile"]) == 1)
                assert bot.seen["profile"] == [("Member", 8, True)]
                assert fake.original_response(inter)["content"] == "Making a meme of Bobby"
                assert fake.followups(inter) == []
                [deleted] = fake.followups(inter, include_deleted=True)
                assert deleted["content"] == "temporary"
                [post] = fake.channel_messages(CHANNEL)
                assert post["content"] == "final"
                assert [m["content"] for m in fake.message_history(post)] == ["draft", "final"]
            assert fake.unknown_routes == [] and fake.errors == []

    run(main)


def test_raw_protocol_errors_compression_and_unknown_routes() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            world(fake)
            auth = {"Authorization": f"Bot {fake.token}"}
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"}) as r:
                    assert r.status == 401 and await r.json() == {"message": "401: Unauthorized", "code": 0}
                async with session.get(f"{fake.api_base}/guilds/1/audit-logs", headers=auth) as r:
                    assert r.status == 404 and await r.json() == {"code": 0, "message": "404: Not Found"}
                    assert r.headers["Content-Type"] == "application/json"
                async with session.get(f"{fake.api_base}/gateway/bot", headers=auth) as r:
                    assert (await r.json())["url"] == fake.gateway_url
                async with session.post(f"{fake.api_base}/channels/{CHANNEL}/messages", headers=auth,
                                        data=b"{oops") as r:
                    assert r.status == 400 and (await r.json())["code"] == 50109
                assert fake.unknown_routes == [{"method": "GET", "path": "/guilds/1/audit-logs"}]

                url = f"{fake.gateway_url}?v=10&encoding=json&compress=zlib-stream"
                async with session.ws_connect(url) as ws:
                    inflate = zlib.decompressobj()
                    hello = await ws.receive()
                    assert hello.type == aiohttp.WSMsgType.BINARY and hello.data.endswith(b"\x00\x00\xff\xff")
                    assert inflate.decompress(hello.data).startswith(b'{"op":10,"d":{"heartbeat_interval":41250')
                    await ws.send_json({"op": 1, "d": None})
                    ack = await ws.receive()
                    assert inflate.decompress(ack.data) == b'{"op":11,"d":null,"s":null,"t":null}'
                    await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}})
                    closed = await ws.receive()
                    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4004
                async with session.ws_connect(f"{fake.gateway_url}?v=10&encoding=etf") as ws:
                    assert (await ws.receive()).data == 4002
                async with session.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
                    assert (await ws.receive_json())["op"] == 10
                    await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 1, "properties": {},
                                                       "shard": [1, 2]}})
                    ready = await ws.receive_json()
                    assert (ready["t"], ready["s"], ready["d"]["shard"]) == ("READY", 1, [1, 2])
                    assert ready["d"]["guilds"] == [{"id": str(GUILD), "unavailable": True}]  # 1001 % 2 == 1
                    created = await ws.receive_json()
                    assert (created["t"], created["s"], created["d"]["name"]) == ("GUILD_CREATE", 2, "Meme Lab")
                    await ws.send_json({"op": 8, "d": {"guild_id": str(GUILD), "query": "", "limit": 0,
                                                       "nonce": "n1"}})
                    chunk = await ws.receive_json()
                    assert (chunk["t"], chunk["s"], chunk["d"]["nonce"]) == ("GUILD_MEMBERS_CHUNK", 3, "n1")
                    assert [m["user"]["id"] for m in chunk["d"]["members"]] == [str(fake.bot_id)]
            assert fake.identifies[-1]["shard"] == [1, 2] and fake.errors == []

    run(main)


class InstallCog(commands.Cog):
    """/everywhere allows both install types and every context; /usercontexts allows both
    install types and leaves its contexts unset."""

    def __init__(self, bot: commands.Bot) -> None:
        self.seen: defaultdict[str, list[Any]] = bot.seen

    @app_commands.command(name="everywhere", description="Works in any DM")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def everywhere(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"user install: {interaction.is_user_integration()}")
        try:
            await interaction.channel.send("and in the channel")  # type: ignore[union-attr]
            posted = "posted"
        except discord.Forbidden as error:
            posted = f"forbidden {error.code}"
        self.seen["everywhere"].append((interaction.context.private_channel, posted))

    @app_commands.command(name="usercontexts", description="Default contexts")
    @app_commands.allowed_installs(guilds=True, users=True)
    async def usercontexts(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")


def test_user_installs_group_dms_and_contexts() -> None:
    async def main() -> None:
        async with FakeDiscord() as fake:
            _, _, alice, bob = world(fake)
            group = fake.group_dm_channel([alice, bob], "friends")
            bot = MemeBot(InstallCog)
            async with fake.running(bot):
                await bot.tree.sync()
                with pytest.raises(PermissionError, match="no install"):  # alice has not installed the app
                    fake.slash_command(None, group, alice, "everywhere")
                fake.install_for_user(alice)
                in_group = fake.slash_command(None, group, alice, "everywhere")
                with pytest.raises(PermissionError, match="in context 2"):  # unset contexts: servers, bot DMs
                    fake.slash_command(None, group, alice, "usercontexts")
                in_dm = fake.slash_command(None, fake.dm_channel(alice), alice, "everywhere")
                await fake.wait_for(lambda: len(bot.seen["everywhere"]) == 2)
                assert (in_group["context"], in_group["authorizing_integration_owners"]) == (2, {"1": "7"})
                assert (in_dm["context"], in_dm["authorizing_integration_owners"]) == (1, {"0": "0", "1": "7"})
                assert fake.callbacks(in_group)[0]["data"]["content"] == "user install: True"
                assert sorted(bot.seen["everywhere"]) == [(False, "posted"), (True, "forbidden 50001")]
            assert fake.errors == []

    run(main)
