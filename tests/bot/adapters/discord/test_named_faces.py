"""Several named faces per person in Discord: /face set name:, /face list, /face delete
name:, and /swap faces: puts them on a template's faces in order."""

from __future__ import annotations

import asyncio

from tests.bot.adapters.discord.conftest import GUILD, final_response
from tests.bot.adapters.discord.test_commands import decode


async def reply(fake, interaction: dict) -> dict:
    """The response of a command that answers at once, without "thinking"."""
    await fake.wait_for(lambda: bool(fake.original_response(interaction)))
    return fake.original_response(interaction)


def test_two_named_faces_go_onto_a_two_face_template_in_order(discord_bot, selfie_jpeg, friend_selfie_jpeg,
                                                              wears_faces, library):
    async def main():
        async with discord_bot() as world:
            fake, channel = world.fake, world.channel
            noa = fake.user(85, "noa")
            fake.member(GUILD, noa)
            mine = fake.attachment(channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            friend = fake.attachment(channel["id"], friend_selfie_jpeg, "ana.jpg", "image/jpeg")
            saved = [await final_response(fake, fake.slash_command(GUILD, channel, noa, "face set", options))
                     for options in ({"selfie": mine}, {"selfie": friend, "name": "ana"})]
            listed = await reply(fake, fake.slash_command(GUILD, channel, noa, "face list", {}))
            completions = []
            for typed in ("", "me,a", "me, _,", "x" * 99 + ","):
                query = fake.autocomplete(GUILD, channel, noa, "swap", {"template": "duo", "faces": typed},
                                          focused="faces")
                completions.append([c["value"] for c in await fake.autocomplete_choices(query)])
            swap = await final_response(fake, fake.slash_command(GUILD, channel, noa, "swap",
                                                                 {"template": "duo", "faces": "me, ana"}))
            unknown = await final_response(fake, fake.slash_command(GUILD, channel, noa, "swap",
                                                                    {"template": "duo", "faces": "me,zed"}))
            both = await final_response(fake, fake.slash_command(GUILD, channel, noa, "swap", {
                "template": "duo", "faces": "me,_", "selfie": mine}))
            deleted = await reply(fake, fake.slash_command(GUILD, channel, noa, "face delete", {"name": "ana"}))
            after = await reply(fake, fake.slash_command(GUILD, channel, noa, "face list", {}))
            return saved, listed, completions, swap, unknown, both, deleted, after

    saved, listed, completions, swap, unknown, both, deleted, after = asyncio.run(main())
    assert completions == [["ana", "me", "_"], ["me,ana"], ["me, _,ana", "me, _,me", "me, _,_"], []]
    assert [s["content"].split(" (")[0] for s in saved] == ["✅ Saved your face as `me`", "✅ Saved your face as `ana`"]
    assert listed["content"] == "Your saved faces (2 of 5): `ana`, `me`"
    assert swap["content"] == "✅ Here's your meme!", swap["content"]
    [meme] = swap["attachments"]
    wears_faces(decode(meme["data"]), library.compile(library.get("duo")), [selfie_jpeg, friend_selfie_jpeg])
    assert unknown["content"] == "⚠️ You have no saved face named 'zed'; yours: ana, me."
    assert both["content"] == "⚠️ Send a selfie or name saved faces for the template's faces, not both."
    assert deleted["content"] == "Deleted that saved face."
    assert after["content"] == "Your saved faces (1 of 5): `me`"
