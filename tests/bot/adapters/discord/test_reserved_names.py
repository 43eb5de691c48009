"""The `one-off-` names belong to the one-off templates of "Swap my face into this": nobody
can add a template under one, and a swap with a template that has one (added before the
names were reserved) never removes it."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select, update

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.store.models import CustomTemplate
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import final_response
from tests.fakes.discord_api import PERM_MANAGE_GUILD


def test_a_one_off_name_cannot_be_added(discord_bot, template_media):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            admin = fake.user(71, "ada")
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            upload = fake.attachment(world.channel["id"], template_media.read_bytes(), "cats.mp4", "video/mp4")
            added = fake.slash_command(GUILD, world.channel, admin, "templates-admin add",
                                       {"file": upload, "name": "one-off-cats"})
            answer = await final_response(fake, added)
            async with world.services.database.transaction() as session:
                rows = (await session.scalars(select(CustomTemplate.name))).all()
            return answer, rows

    answer, rows = asyncio.run(main())
    assert answer["content"] == "⚠️ Names starting with 'one-off-' are reserved; pick another name."
    assert rows == []


def test_a_swap_with_a_template_named_like_a_one_off_keeps_it(discord_bot, template_media, selfie_jpeg):
    guild = Scope("guild", "discord", str(GUILD))

    async def main():
        async with discord_bot() as world:
            fake, templates = world.fake, world.services.templates
            admin = fake.user(71, "ada")
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            await templates.add(Requester("discord", "71", guild, is_scope_admin=True), template_media, "cats")
            # What a guild has when it added "one-off-cats" before the names were reserved.
            folder = templates.library.scope_folder(guild.key)
            (folder / "cats").rename(folder / "one-off-cats")
            manifest = folder / "one-off-cats" / "manifest.json"
            manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "name": "one-off-cats"}))
            async with world.services.database.transaction() as session:
                await session.execute(update(CustomTemplate).values(name="one-off-cats"))

            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = fake.slash_command(GUILD, world.channel, admin, "swap",
                                      {"template": "one-off-cats", "selfie": selfie})
            answer = await final_response(fake, swap)
            again = fake.slash_command(GUILD, world.channel, admin, "swap",
                                       {"template": "one-off-cats", "selfie": selfie})
            second = await final_response(fake, again)
            return answer, second, (folder / "one-off-cats" / "manifest.json").is_file()

    answer, second, still_there = asyncio.run(main())
    assert answer["content"] == "✅ Here's your meme!"
    assert still_there and second["content"] == "✅ Here's your meme!"


def test_swap_into_a_message_without_a_saved_face_downloads_nothing(discord_bot, template_media):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice, bob = fake.user(40, "alice"), fake.user(41, "bob")
            fake.member(GUILD, alice)
            fake.member(GUILD, bob)
            posted = fake.message(world.channel, bob, "look", attachments=[
                fake.attachment(world.channel["id"], template_media.read_bytes(), "dance.mp4", "video/mp4")])
            menu = fake.message_context_menu(GUILD, world.channel, alice, "Swap my face into this", posted)
            answer = await final_response(fake, menu)
            return answer, [r for r in fake.requests if r.get("kind") == "file"]

    answer, downloads = asyncio.run(main())
    assert answer["content"] == ("⚠️ You have no saved face yet: save one with `/face set`, "
                                 "or attach a `selfie:` to `/swap`.")
    assert downloads == []


def test_a_taken_name_is_refused_before_any_download(discord_bot, template_media):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            admin = fake.user(71, "ada")
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            answers = []
            for file_name in ("first.mp4", "second.mp4"):
                upload = fake.attachment(world.channel["id"], template_media.read_bytes(), file_name, "video/mp4")
                answers.append(await final_response(fake, fake.slash_command(
                    GUILD, world.channel, admin, "templates-admin add", {"file": upload, "name": "party"})))
            return answers, [r["path"] for r in fake.requests if r.get("kind") == "file"]

    (first, second), downloads = asyncio.run(main())
    assert first["content"].startswith("✅ Added “party”")
    assert second["content"] == "⚠️ A template named 'party' already exists here."
    assert [path for path in downloads if path.endswith("second.mp4")] == []
