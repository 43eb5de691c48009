"""What a Discord user sees, end to end: the real discord.py against a loopback Discord
(REST and gateway), real swaps, a real store."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from memeswap.bot.core.requesters import Requester, Scope
from memeswap.bot.store.models import CustomTemplate, SavedFace
from memeswap.inference.jobs.blobs import BlobNotFoundError
from memeswap.inference.jobs.contract import Failed, Succeeded, SwapJob
from memeswap.inference.media.decode import read_frames
from memeswap.inference.media.encode import encode_frames
from memeswap.inference.templates.catalog import builtin_templates_dir
from tests.bot.adapters.conftest import template_frames
from tests.bot.adapters.discord.conftest import GUILD, OTHER_GUILD, TIMEOUT, DiscordWorld, final_response
from tests.fakes.discord_api import MIB, PERM_MANAGE_GUILD, FakeDiscord


def decode(data: bytes, suffix: str = ".gif") -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"meme{suffix}"
        path.write_bytes(data)
        return list(read_frames(path))


async def count_rows(world: DiscordWorld, model) -> int:
    async with world.services.database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model))


def test_swap_happy_path_the_gif_that_arrives_carries_the_selfies_face(discord_bot, selfie_jpeg, carries_face,
                                                                        library):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice = fake.user(7, "alice")
            fake.member(GUILD, alice)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = fake.slash_command(GUILD, world.channel, alice, "swap", {"template": "bounce", "selfie": selfie})
            final = await final_response(fake, swap)
            return final, fake.callbacks(swap), fake.ack_latency(swap), fake.original_history(swap), \
                fake.synced_commands()

    final, callbacks, ack, history, commands = asyncio.run(main())
    assert {c["name"] for c in commands} >= {"swap", "face", "forget", "templates", "Swap my face into this"}
    assert [c["type"] for c in callbacks] == [5] and ack < 3.0  # deferred ("thinking") at once
    shown = [h["content"] for h in history]
    assert any("Swapping faces" in s for s in shown), shown
    assert final["content"] == "✅ Here's your meme!"
    [meme] = final["attachments"]
    assert meme["filename"] == "meme.gif" and meme["data"][:6] == b"GIF89a" and meme["size"] <= 10 * MIB
    carries_face(decode(meme["data"]), selfie_jpeg, template_frames(library, "bounce"))


def test_acknowledged_within_three_seconds_while_the_queue_is_full(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot(job_workers=1, job_queue_max=1, per_user_jobs=5) as world:
            fake = world.fake
            users = [fake.user(20 + i, f"user{i}") for i in range(3)]
            swaps = []
            for user in users:
                fake.member(GUILD, user)
                selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
                swaps.append(fake.slash_command(GUILD, world.channel, user, "swap",
                                                {"template": "dramatic-zoom", "selfie": selfie}))
            finals = [await final_response(fake, s) for s in swaps]
            return [fake.ack_latency(s) for s in swaps], finals

    acks, finals = asyncio.run(main())
    assert all(ack is not None and ack < 3.0 for ack in acks), acks
    contents = [f["content"] for f in finals]
    busy = [c for c in contents if c.startswith("⚠️ Lots of memes are being made right now.")]
    assert len(busy) == 1 and contents.count("✅ Here's your meme!") == 2, contents


def test_autocomplete_ranks_builtins_and_this_servers_templates(discord_bot, template_media):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            admin = fake.user(30, "ada")
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            fake.member(OTHER_GUILD, admin, PERM_MANAGE_GUILD)
            here = Requester("discord", "30", Scope("guild", "discord", str(GUILD)), is_scope_admin=True)
            await world.services.templates.add(here, template_media, "bonk")
            results = {}
            for guild, channel, typed in ((GUILD, world.channel, "bo"), (OTHER_GUILD, world.other_channel, "bo"),
                                          (GUILD, world.channel, "")):
                started = time.monotonic()
                query = fake.autocomplete(guild, channel, admin, "swap", {"template": typed},
                                          focused="template")
                choices = await fake.autocomplete_choices(query)
                results[(guild, typed)] = ([c["value"] for c in choices], time.monotonic() - started)
            return results

    results = asyncio.run(main())
    here, here_s = results[(GUILD, "bo")]
    there, _ = results[(OTHER_GUILD, "bo")]
    everything, _ = results[(GUILD, "")]
    assert here[:2] == ["bonk", "bounce"] or here[:2] == ["bounce", "bonk"]  # name prefix matches first
    assert "bonk" not in there and "bounce" in there  # another server's template stays there
    builtins = len(list(builtin_templates_dir().glob("*/manifest.json")))
    assert builtins >= 20 and len(everything) == min(builtins + 1, 25)  # Discord shows at most 25 choices
    assert here_s < 1.0


def test_context_menu_swaps_the_saved_face_into_a_gif_message(discord_bot, selfie_jpeg, carries_face, library):
    clip_frames = template_frames(library, "shake")
    gif = encode_frames(clip_frames, "gif", fps=12).data
    short_clip = encode_frames(clip_frames[:8], "mp4", fps=12).data  # a Tenor-style link's video

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            alice, bob = fake.user(40, "alice"), fake.user(41, "bob")
            fake.member(GUILD, alice)
            fake.member(GUILD, bob)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            saved = fake.slash_command(GUILD, world.channel, alice, "face set", {"selfie": selfie})
            await final_response(fake, saved)
            posted = fake.message(world.channel, bob, "look at this",
                                  attachments=[fake.attachment(world.channel["id"], gif, "dance.gif", "image/gif")])
            menu = fake.message_context_menu(GUILD, world.channel, alice, "Swap my face into this", posted)
            final = await final_response(fake, menu)
            linked = fake.message(world.channel, bob, "https://tenor.example/dance",
                                  embeds=[fake.media_embed(short_clip, "dance.mp4", "gifv", "video/mp4")])
            from_embed = await final_response(fake, fake.message_context_menu(
                GUILD, world.channel, alice, "Swap my face into this", linked))
            library = world.services.templates.library
            leftovers = library.scoped_names("discord-user-40") if "discord-user-40" in library.scope_keys() else []
            return fake.original_response(saved), final, from_embed, leftovers, \
                await count_rows(world, CustomTemplate)

    saved, final, from_embed, leftovers, rows = asyncio.run(main())
    assert saved["content"].startswith("✅ Saved your face")
    assert final["content"] == "✅ Here's your meme!", final["content"]
    [meme] = final["attachments"]
    frames = decode(meme["data"])
    carries_face(frames, selfie_jpeg, decode(gif))
    assert rows == 0 and leftovers == []  # the posted GIF was used for this swap only, then removed
    assert from_embed["content"] == "✅ Here's your meme!", from_embed["content"]
    assert len(decode(from_embed["attachments"][0]["data"])) == 8


def test_a_selfie_without_a_face_and_an_attachment_that_is_not_an_image(discord_bot, faceless_jpeg):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            carol = fake.user(50, "carol")
            fake.member(GUILD, carol)
            coffee = fake.attachment(world.channel["id"], faceless_jpeg, "coffee.jpg", "image/jpeg")
            no_face = fake.slash_command(GUILD, world.channel, carol, "swap", {"template": "bounce", "selfie": coffee})
            pdf = fake.attachment(world.channel["id"], b"%PDF-1.4\n" + bytes(500), "notes.pdf", "application/pdf")
            not_image = fake.slash_command(GUILD, world.channel, carol, "swap", {"template": "bounce", "selfie": pdf})
            return await final_response(fake, no_face), await final_response(fake, not_image), fake.requests

    no_face, not_image, requests = asyncio.run(main())
    assert no_face["content"].startswith("⚠️ No face found in the photo") and no_face["attachments"] == []
    assert not_image["content"] == ("⚠️ That attachment isn't a photo of your face (it is application/pdf); "
                                    "attach a photo of your face.")
    assert not any("notes.pdf" in r["path"] for r in requests)  # refused by its declared type, not downloaded


def test_an_output_that_must_shrink_to_fit_ten_mib(discord_bot, selfie_jpeg, tmp_path, library):
    """A large, grainy template: its own frames as a GIF are far over 10 MiB; the meme fits."""
    rng = np.random.default_rng(7)
    frames = []
    for frame in template_frames(library, "bounce")[:24]:
        big = cv2.resize(frame, (800, 800), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        frames.append(np.clip(big + rng.integers(-40, 41, big.shape), 0, 255).astype(np.uint8))
    grainy = tmp_path / "grainy.mp4"
    grainy.write_bytes(encode_frames(frames, "mp4", fps=12).data)
    unconstrained = len(encode_frames(frames, "gif", fps=12).data)

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            dan = fake.user(60, "dan")
            fake.member(GUILD, dan, PERM_MANAGE_GUILD)
            here = Requester("discord", "60", Scope("guild", "discord", str(GUILD)), is_scope_admin=True)
            await world.services.templates.add(here, grainy, "grainy")
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = fake.slash_command(GUILD, world.channel, dan, "swap", {"template": "grainy", "selfie": selfie})
            return await final_response(fake, swap, timeout=240), swap["attachment_size_limit"]

    final, limit = asyncio.run(main())
    assert limit == 10 * MIB and unconstrained > limit
    assert final["content"] == "✅ Here's your meme!", final["content"]
    [meme] = final["attachments"]
    assert len(meme["data"]) <= limit
    assert len(decode(meme["data"])) >= 12  # the encoder may drop every other frame to fit, no more


def test_adding_a_template_needs_manage_server(discord_bot, template_media):
    clip = template_media.read_bytes()

    async def main():
        async with discord_bot() as world:
            fake = world.fake
            member, admin = fake.user(70, "max"), fake.user(71, "ada")
            fake.member(GUILD, member)
            fake.member(GUILD, admin, PERM_MANAGE_GUILD)
            upload = fake.attachment(world.channel["id"], clip, "party.mp4", "video/mp4")
            # Discord hides the command from members without Manage Server, unless an admin lets them in:
            fake.permit_command(GUILD, "templates-admin", member)
            refused = fake.slash_command(GUILD, world.channel, member, "templates-admin add",
                                         {"file": upload, "name": "party"})
            refusal = await final_response(fake, refused)
            rows_after_refusal = await count_rows(world, CustomTemplate)
            downloads = [r for r in fake.requests if "party.mp4" in r["path"]]
            added = fake.slash_command(GUILD, world.channel, admin, "templates-admin add", {"file": upload, "name": "party"})
            success = await final_response(fake, added)
            return refusal, rows_after_refusal, downloads, success, await count_rows(world, CustomTemplate)

    refusal, rows_after_refusal, downloads, success, rows = asyncio.run(main())
    assert rows_after_refusal == 0
    assert downloads == []  # refused before the file was fetched
    assert refusal["content"] == "⚠️ Only an admin of this server can add templates here."
    assert success["content"] == "✅ Added “party” for this server: `/swap template:party`" and rows == 1


def test_forget_erases_the_saved_face_and_swap_then_asks_for_a_selfie(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot() as world:
            fake = world.fake
            eve = fake.user(80, "eve")
            fake.member(GUILD, eve)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            await final_response(fake, fake.slash_command(GUILD, world.channel, eve, "face set", {"selfie": selfie}))
            faces_before = await count_rows(world, SavedFace)
            show = fake.slash_command(GUILD, world.channel, eve, "face show")
            await fake.wait_for(lambda: fake.callbacks(show))
            forget = fake.slash_command(GUILD, world.channel, eve, "forget")
            erased = await final_response(fake, forget)
            swap = fake.slash_command(GUILD, world.channel, eve, "swap", {"template": "bounce"})
            return faces_before, fake.callbacks(show), fake.callbacks(forget), erased, \
                await final_response(fake, swap), await count_rows(world, SavedFace)

    faces_before, shown, forget_callbacks, erased, swap, faces_after = asyncio.run(main())
    [face] = shown
    assert face["data"]["content"] == "Your saved face:" and list(face["files"]) == ["face.png"]
    assert face["files"]["face.png"][:8] == b"\x89PNG\r\n\x1a\n" and face["data"]["flags"] & 64  # ephemeral
    assert faces_before == 1 and faces_after == 0
    [deferred] = forget_callbacks
    assert deferred["type"] == 5 and deferred["data"]["flags"] & 64  # "thinking", seen by the person only
    assert erased["content"].startswith("Done: I erased your saved faces (1)")
    assert swap["content"] == ("⚠️ You have no saved face yet: save one with `/face set`, "
                               "or attach a `selfie:` to `/swap`.")


def test_a_meme_ready_after_the_token_expired_is_posted_in_the_channel(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot({"token_ttl_s": 0.5}) as world:
            fake = world.fake
            finn = fake.user(90, "finn")
            fake.member(GUILD, finn)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            fake.slash_command(GUILD, world.channel, finn, "swap", {"template": "bounce", "selfie": selfie})
            await fake.wait_for(lambda: fake.channel_messages(world.channel["id"]), TIMEOUT)
            return fake.channel_messages(world.channel["id"])

    [posted] = asyncio.run(main())
    assert posted["content"] == "<@90> here's your meme!"
    assert posted["attachments"][0]["data"][:6] == b"GIF89a"


def test_a_second_swap_within_the_cooldown_gets_a_friendly_line(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot(discord_cooldown_s=60) as world:
            fake = world.fake
            gus = fake.user(95, "gus")
            fake.member(GUILD, gus)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            first = fake.slash_command(GUILD, world.channel, gus, "swap", {"template": "bounce", "selfie": selfie})
            await fake.wait_for(lambda: fake.callbacks(first))
            second = fake.slash_command(GUILD, world.channel, gus, "swap", {"template": "shake", "selfie": selfie})
            await fake.wait_for(lambda: fake.callbacks(second))
            await final_response(fake, first)
            return fake.callbacks(second)

    [answer] = asyncio.run(main())
    assert answer["data"]["content"].startswith("⏳ Easy there! You can make another meme in")


def test_sharded_by_configuration_each_shard_answers_its_servers(discord_bot):
    async def main():
        async with discord_bot({"shard_count": 2}, discord_shards=2) as world:
            fake = world.fake
            hana = fake.user(99, "hana")
            answers = []
            for guild_id, channel in ((GUILD, world.channel), (OTHER_GUILD, world.other_channel)):
                fake.member(guild_id, hana)
                help_request = fake.slash_command(guild_id, channel, hana, "help")
                await fake.wait_for(lambda: fake.callbacks(help_request))
                answers.append(fake.callbacks(help_request)[0]["data"]["content"])
            return type(world.adapter.bot).__name__, sorted({tuple(i["shard"]) for i in fake.identifies}), answers

    bot_class, shards, answers = asyncio.run(main())
    assert bot_class == "ShardedMemeswapBot" and shards == [(0, 2), (1, 2)]
    assert {FakeDiscord.shard_for_guild(GUILD, 2), FakeDiscord.shard_for_guild(OTHER_GUILD, 2)} == {0, 1}
    assert all("Only swap your own face" in answer for answer in answers)


def test_a_result_nobody_here_followed_is_posted_in_its_channel(discord_bot):
    """After a restart the engine hands over finals of jobs the previous run started; the
    adapter posts them in the job's channel with a mention and deletes the result blob."""
    async def main():
        async with discord_bot() as world:
            ref = world.services.blobs.put(b"GIF89a" + bytes(64), 60)
            job = SwapJob(job_id="orphan-1", user_key="discord:7", selfie_ref="gone", template="bounce",
                          reply_to=f"discord:{world.channel['id']}:7")
            handled = await world.adapter.deliver_unfollowed(job, Succeeded(result_ref=ref, mime="image/gif",
                                                                            size=70))
            failed = job.model_copy(update={"job_id": "orphan-2"})
            await world.adapter.deliver_unfollowed(failed, Failed(code="deadline", message="too slow",
                                                                  retryable=True))
            not_ours = await world.adapter.deliver_unfollowed(job.model_copy(update={"reply_to": "telegram:1:2"}),
                                                              Failed(code="x", message="y", retryable=False))
            return handled, not_ours, fake_messages(world), ref, world.services.blobs

    handled, not_ours, posted, ref, blobs = asyncio.run(main())
    assert handled and not not_ours
    assert [m["content"] for m in posted] == ["<@7> here's your meme!", "<@7> ⚠️ Too slow. You can try again."]
    assert posted[0]["attachments"][0]["data"][:6] == b"GIF89a"
    with pytest.raises(BlobNotFoundError):
        blobs.get(ref)


def fake_messages(world: DiscordWorld) -> list[dict]:
    return world.fake.channel_messages(world.channel["id"])
