"""Run by deploy/smoke.sh inside the bot's container (`podman exec -i BOT python3 - < this`):
one swap started and followed the way a chat adapter does (bot.core's Swaps over the bot's
database, through Redis to the worker containers), timed; exits 1 unless a meme came back."""

import asyncio
import os
import sys
import time
from importlib.resources import files

os.environ["MEMESWAP_SHARD_NAME"] = "smoke-probe"  # its own results stream, not the bot's

from memeswap.bot.assembly import open_services  # noqa: E402
from memeswap.bot.core.requesters import Requester, Scope  # noqa: E402
from memeswap.bot.settings import Settings  # noqa: E402
from memeswap.inference.jobs.contract import Failed, Succeeded  # noqa: E402


async def one_swap() -> int:
    selfie = files("memeswap.inference").joinpath("sample_photos/grace_hopper.jpg").read_bytes()
    async with open_services(Settings()) as services:
        requester = Requester("smoke", "1", Scope("user", "smoke", "1"))
        began = time.monotonic()
        job = await services.swaps.start(requester, "deal-with-it", selfie=selfie)
        final: Succeeded | Failed | None = None
        async for event in services.swaps.follow(job):
            if isinstance(event, Succeeded | Failed):
                final = event
        if not isinstance(final, Succeeded):
            print(f"smoke job: no meme ({final})")
            return 1
        meme = await services.result(final)
        await services.discard_result(final)
        print(f"smoke job: {len(meme)} bytes of {final.mime} through Redis and a worker "
              f"in {time.monotonic() - began:.1f} s")
        return 0


sys.exit(asyncio.run(one_swap()))
