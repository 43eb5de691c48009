"""GIF search on Discord, end to end: discord.py against the loopback Discord, the search
provider (Tenor's API) played by the loopback fake, real swaps."""

from __future__ import annotations

import asyncio
import logging
import time

from memeswap.bot.core.requesters import Requester, Scope
from tests.bot.adapters.discord.conftest import GUILD, DiscordWorld, final_response
from tests.bot.adapters.discord.test_commands import decode
from tests.bot.adapters.discord.test_hostile_input import NOT_FETCHED, Listener, errors_logged
from tests.fakes.gif_search_api import FakeGifSearch

UNAVAILABLE = "⚠️ GIF search isn't answering right now; try again in a moment, or pick a template."


def searching(api: FakeGifSearch, **overrides) -> dict:
    """The bot's settings for GIF search through `api` (its media trusted on loopback)."""
    return {"tenor_api_key": api.key, "tenor_api_url": api.tenor_url,
            "download_loopback_origins": [api.origin], **overrides}


async def member_with_saved_face(world: DiscordWorld, user_id: int, selfie: bytes) -> dict:
    user = world.fake.user(user_id, f"user{user_id}")
    world.fake.member(GUILD, user)
    await world.services.faces.save(Requester("discord", str(user_id), Scope("guild", "discord", str(GUILD))),
                                    selfie)
    return user


async def help_text(world: DiscordWorld, user: dict) -> str:
    interaction = world.fake.slash_command(GUILD, world.channel, user, "help")
    await world.fake.wait_for(lambda: world.fake.callbacks(interaction))
    return world.fake.callbacks(interaction)[0]["data"]["content"]


def option_names(world: DiscordWorld) -> dict[str, bool]:
    [swap] = [c for c in world.fake.synced_commands() if c["name"] == "swap"]
    return {o["name"]: bool(o.get("required")) for o in swap["options"]}


def test_autocomplete_offers_the_providers_gifs_and_the_pick_becomes_a_meme(discord_bot, selfie_jpeg, searchable_gif,
                                                                             carries_face):
    async def main():
        async with FakeGifSearch() as api:
            api.add_gif("7001", "Shake it off", searchable_gif, 220, 180)
            api.add_gif("7002", "Shaken not stirred", searchable_gif, 220, 180)
            api.add_gif("7003", "Calm lake", searchable_gif, 220, 180)
            async with discord_bot(**searching(api)) as world:
                fake = world.fake
                alice = await member_with_saved_face(world, 90, selfie_jpeg)
                started = time.monotonic()
                typed = fake.autocomplete(GUILD, world.channel, alice, "swap", {"search": "shake"}, focused="search")
                choices = await fake.autocomplete_choices(typed)
                seconds = time.monotonic() - started
                again = await fake.autocomplete_choices(
                    fake.autocomplete(GUILD, world.channel, alice, "swap", {"search": "shake "}, focused="search"))
                swap = fake.slash_command(GUILD, world.channel, alice, "swap", {"search": choices[0]["value"]})
                final = await final_response(fake, swap)
                return (option_names(world), choices, again, seconds, final, api.calls("tenor"), api.calls("media"),
                        await help_text(world, alice))

    options, choices, again, seconds, final, searches, media, help_line = asyncio.run(main())
    assert {name: options[name] for name in ("template", "selfie", "search")} == {
        "template": False, "selfie": False, "search": False} and "`/swap search:`" in help_line
    assert [c["value"] for c in choices] == ["7001", "7002"] and seconds < 3.0
    assert choices[0]["name"] == "Shake it off · 220×180"
    assert again == choices and len(searches) == 1  # the same query within a minute is not asked again
    [search] = searches
    assert search["keyed"] and search["query"]["q"] == "shake" and search["query"]["client_key"] == "memeswap"
    assert final["content"] == "✅ Here's your meme!", final["content"]
    [meme] = final["attachments"]
    carries_face(decode(meme["data"]), selfie_jpeg, decode(searchable_gif))
    assert len(media) == 1  # the pick was resolved from the results the bot returned, then fetched once


def test_without_a_key_swap_has_no_search_option(discord_bot):
    async def main():
        async with discord_bot() as world:
            ada = world.fake.user(92, "ada")
            world.fake.member(GUILD, ada)
            return option_names(world), await help_text(world, ada)

    options, help_line = asyncio.run(main())
    assert "search" not in options and options["template"] is True and options["selfie"] is False
    assert "search" not in help_line


def test_a_provider_that_is_down_slow_or_hostile_gets_one_line_and_the_bot_stays_up(
        discord_bot, selfie_jpeg, searchable_gif, caplog):
    caplog.set_level(logging.INFO)

    async def main():
        async with FakeGifSearch() as api, Listener(searchable_gif).running() as inside:
            api.add_gif("8001", "Shake elsewhere", searchable_gif, 220, 180, media_url="https://evil.example.com/a.gif")
            api.add_gif("8002", "Shake inside", searchable_gif, 220, 180,
                        redirect_to=f"http://127.0.0.1:{inside.port}/secret.gif")
            api.add_gif("8003", "Shake fine", searchable_gif, 220, 180)
            async with discord_bot(**searching(api, gif_search_timeout_s=1.0)) as world:
                fake = world.fake
                alice = await member_with_saved_face(world, 91, selfie_jpeg)

                async def swap(search: str) -> str:
                    interaction = fake.slash_command(GUILD, world.channel, alice, "swap", {"search": search})
                    return (await final_response(fake, interaction))["content"]

                async def typed(text: str) -> tuple[list, float | None]:
                    interaction = fake.autocomplete(GUILD, world.channel, alice, "swap", {"search": text},
                                                    focused="search")
                    return await fake.autocomplete_choices(interaction), fake.ack_latency(interaction)

                lines, offered = {}, {}
                lines["elsewhere"] = await swap("8001")  # looked up by id: the provider points off the list
                lines["redirect"] = await swap("8002")
                lines["forged"] = await swap("https://evil.example.com/a.gif")  # text, searched: no result
                lines["both"] = (await final_response(fake, fake.slash_command(
                    GUILD, world.channel, alice, "swap", {"search": "8003", "template": "bounce"})))["content"]
                api.status = 503
                offered["down"] = await typed("down")
                lines["down"] = await swap("down")
                api.status, api.delay_s = None, 5.0
                offered["slow"] = await typed("slow")
                lines["slow"] = await swap("slow")
                api.delay_s, api.huge_bytes = 0.0, 8 * 1024 * 1024
                offered["huge"] = await typed("huge")
                lines["huge"] = await swap("huge")
                api.huge_bytes = 0
                offered["again"] = await typed("shake")
                return lines, offered, inside.connections, api.calls("tenor")

    lines, offered, connections, calls = asyncio.run(main())
    assert lines == {"elsewhere": NOT_FETCHED, "redirect": NOT_FETCHED,
                     "forged": "⚠️ No GIF found for 'https://evil.example.com/a.gif'; try other words.",
                     "both": "⚠️ Pick either a `template:` or a GIF with `search:`.",
                     "down": UNAVAILABLE, "slow": UNAVAILABLE, "huge": UNAVAILABLE}
    assert connections == 0
    # Ids nobody was offered here are looked up (Tenor's posts endpoint), text is searched, and
    # a swap asking for a template and a search at once is refused before anything is asked.
    assert [(c["path"], c["query"].get("ids") or c["query"].get("q")) for c in calls[:4]] == [
        ("/tenor/v2/posts", "8001"), ("/tenor/v2/posts", "8002"), ("/tenor/v2/search", "https://evil.example.com/a.gif"),
        ("/tenor/v2/search", "down")]
    for case in ("down", "slow", "huge"):
        choices, ack = offered[case]
        assert choices == [] and ack is not None and ack < 3.0, (case, offered[case])
    assert [c["value"] for c in offered["again"][0]] == ["8001", "8002", "8003"]  # up, and searching again
    assert errors_logged(caplog) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "fake-gif-search-key" not in logged
    assert "gif search: tenor gave HTTP 503" in logged and "an answer over" in logged
