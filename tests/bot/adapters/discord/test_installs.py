"""Where Discord offers memeswap's commands: the registered payloads (contexts, install types,
default permissions), and a person's own install making memes in a group DM, where the bot
itself is not."""

from __future__ import annotations

import asyncio

import pytest

from memeswap.bot.core.requesters import Requester, Scope
from tests.bot.adapters.discord.conftest import GUILD, TIMEOUT, final_response
from tests.fakes.discord_api import PERM_MANAGE_GUILD

EVERYWHERE = [0, 1, 2]  # a server, a DM with the bot, other DMs and group DMs
BOTH_INSTALLS = [0, 1]  # a server's install, a person's own


def test_registered_commands_carry_their_contexts_installs_and_default_permissions(discord_bot):
    async def main():
        async with discord_bot() as world:
            return {c["name"]: c for c in world.fake.synced_commands()}

    commands = asyncio.run(main())
    for name in ("swap", "help", "face", "forget", "templates", "Swap my face into this"):
        assert sorted(commands[name]["contexts"]) == EVERYWHERE, name
        assert sorted(commands[name]["integration_types"]) == BOTH_INSTALLS, name
        assert commands[name]["default_member_permissions"] is None, name
    admin = commands["templates-admin"]
    assert int(admin["default_member_permissions"]) == PERM_MANAGE_GUILD
    assert sorted(admin["contexts"]) == [0, 1] and admin["integration_types"] == [0]
    assert {o["name"] for o in admin["options"]} == {"add", "remove", "reports", "resolve"}
    assert {o["name"] for o in commands["templates"]["options"]} == {"list"}  # for everyone


def test_members_are_not_offered_templates_admin_but_are_offered_the_list(discord_bot):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            max_ = fake.user(10, "max")
            fake.member(GUILD, max_)
            with pytest.raises(PermissionError, match="needs permissions"):
                fake.slash_command(GUILD, world.channel, max_, "templates-admin remove", {"name": "x"})
            listed = fake.slash_command(GUILD, world.channel, max_, "templates list")
            await fake.wait_for(lambda: bool((fake.original_response(listed) or {}).get("content")), TIMEOUT)
            return fake.original_response(listed)["content"]

    listing = asyncio.run(main())
    assert listing.startswith("**Built-in** (") and "`/templates-admin add` (needs Manage Server)" in listing


def test_a_user_install_swaps_in_a_group_dm_with_builtin_templates_only(discord_bot, selfie_jpeg, template_media):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice, bob = fake.user(20, "alice"), fake.user(21, "bob")
            fake.member(GUILD, alice, PERM_MANAGE_GUILD)
            here = Requester("discord", "20", Scope("guild", "discord", str(GUILD)), is_scope_admin=True)
            await world.services.templates.add(here, template_media, "bonk")  # a server's, not the group DM's
            group = fake.group_dm_channel([alice, bob], "friends")
            with pytest.raises(PermissionError, match="no install"):  # not installed for alice yet
                fake.slash_command(None, group, alice, "swap", {"template": "bounce"})
            fake.install_for_user(alice)
            with pytest.raises(PermissionError, match="integration_types|no install"):
                fake.slash_command(None, group, alice, "templates-admin remove", {"name": "bonk"})
            offered = await fake.autocomplete_choices(
                fake.autocomplete(None, group, alice, "swap", {"template": "bo"}, focused="template"))
            selfie = fake.attachment(group["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = fake.slash_command(None, group, alice, "swap", {"template": "bounce", "selfie": selfie})
            final = await final_response(fake, swap)
            named = await final_response(fake, fake.slash_command(None, group, alice, "swap", {"template": "bonk"}))
            return fake.interaction(swap), [c["value"] for c in offered], final, named

    sent, offered, final, named = asyncio.run(main())
    assert sent["context"] == 2 and sent["authorizing_integration_owners"] == {"1": "20"} and "guild_id" not in sent
    assert "bounce" in offered and "bonk" not in offered  # built-ins and global only, no server's
    assert final["content"] == "✅ Here's your meme!", final["content"]
    [meme] = final["attachments"]
    assert meme["filename"] == "meme.gif" and meme["data"][:6] == b"GIF89a"
    assert named["content"].startswith("⚠️ No template named 'bonk'")
