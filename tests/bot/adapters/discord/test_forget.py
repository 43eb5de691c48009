"""/forget on Discord while the person's swap is on its way: the swap stops, their selfie
goes, their status says why, and no meme follows; also for a swap that another bot process
(on the same Redis) submitted."""

from __future__ import annotations

import asyncio

import pytest

from memeswap.inference.jobs.blobs import BlobNotFoundError
from memeswap.inference.jobs.contract import SwapJob
from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.jobs.redis_protocol import StreamKeys
from tests.bot.adapters.conftest import JobGate
from tests.bot.adapters.discord.conftest import GUILD
from tests.bot.adapters.discord.test_commands import TIMEOUT, final_response
from tests.inference.jobs.engine_harness import collect

FORGOTTEN_LINE = "⚠️ Cancelled because you asked me to forget you."


def content(fake, interaction) -> str:
    return (fake.original_response(interaction) or {}).get("content") or ""


def test_forget_stops_a_queued_swap_and_its_meme_never_comes(discord_bot, selfie_jpeg, second_selfie_jpeg, tmp_path):
    blobs = tmp_path / "data" / "blobs"

    async def main():
        async with discord_bot(job_workers=1) as world:
            fake, channel = world.fake, world.channel
            ada, bo = fake.user(120, "ada"), fake.user(121, "bo")
            for user in (ada, bo):
                fake.member(GUILD, user)
            gate = JobGate(world.services.engine)  # Ada's swap runs until the test says
            first = fake.slash_command(GUILD, channel, ada, "swap", {
                "template": "dramatic-zoom", "selfie": fake.attachment(channel["id"], selfie_jpeg, "me.jpg",
                                                                       "image/jpeg")})
            await fake.wait_for(lambda: "Swapping faces" in content(fake, first), TIMEOUT)
            second = fake.slash_command(GUILD, channel, bo, "swap", {
                "template": "shake", "selfie": fake.attachment(channel["id"], second_selfie_jpeg, "me.jpg",
                                                               "image/jpeg")})
            await fake.wait_for(lambda: "In the queue" in content(fake, second), TIMEOUT)  # behind Ada's
            bo_selfies = sum(path.read_bytes() == second_selfie_jpeg for path in blobs.iterdir())
            forget = fake.slash_command(GUILD, channel, bo, "forget")
            erased = await final_response(fake, forget)
            stopped = await final_response(fake, second)
            bo_selfies_after = sum(path.read_bytes() == second_selfie_jpeg for path in blobs.iterdir())
            gate.open()
            ada_final = await final_response(fake, first)  # the other person's meme still comes
            await fake.wait_for(lambda: world.services.engine.running == 0, TIMEOUT)
            await asyncio.sleep(0.5)  # room for a meme that should not come
            return (bo_selfies, erased, stopped, bo_selfies_after, ada_final, fake.original_response(second),
                    fake.channel_messages(channel["id"]), sorted(path.name for path in blobs.iterdir()))

    bo_selfies, erased, stopped, bo_selfies_after, ada_final, bo_final, posted, left = asyncio.run(main())
    assert bo_selfies == 1 and bo_selfies_after == 0
    assert erased["content"].startswith("Done: I stopped your swaps in progress (1) and erased your saved faces (0)")
    assert stopped["content"] == FORGOTTEN_LINE and not stopped["attachments"]
    assert bo_final == stopped  # still so, after Ada's swap ended and the queue moved on
    assert ada_final["content"] == "✅ Here's your meme!"
    assert posted == []
    assert left == []


def test_forget_reaches_a_swap_another_bot_process_submitted(discord_bot, redis_url, redis_prefix):
    """Two bot processes on one Redis: the person's swap went in through the other one (a
    Discord shard of another process), their /forget comes here."""
    shared_blobs = RedisBlobStore.from_url(redis_url, prefix=redis_prefix)

    async def main():
        async with discord_bot(redis_url=redis_url, redis_prefix=redis_prefix, shard_name="shard-here") as world:
            fake = world.fake
            cleo = fake.user(122, "cleo")
            fake.member(GUILD, cleo)
            selfie = await asyncio.to_thread(shared_blobs.put, b"cleo's selfie", 600)
            async with RedisStreamsEngine.from_url(redis_url, "shard-there", keys=StreamKeys(redis_prefix)) as there:
                job = SwapJob(job_id="there-1", user_key="discord:122", selfie_ref=selfie, template="bounce",
                              reply_to=f"discord:{world.channel['id']}:122")
                await there.submit(job)
                followed_there = asyncio.create_task(collect(there, job.job_id, timeout=TIMEOUT))
                forget = fake.slash_command(GUILD, world.channel, cleo, "forget")
                await fake.wait_for(lambda: content(fake, forget), TIMEOUT)
                erased = fake.original_response(forget)
                return erased, await followed_there, selfie

    erased, events, selfie = asyncio.run(main())
    assert erased["content"].startswith("Done: I stopped your swaps in progress (1) and erased")
    assert [e.kind for e in events] == ["queued", "failed"]  # no worker runs: it was still queued
    assert events[-1].code == "forgotten" and events[-1].message == "cancelled because you asked me to forget you"
    with pytest.raises(BlobNotFoundError):
        shared_blobs.get(selfie)  # gone from the store every process shares
    shared_blobs.close()
