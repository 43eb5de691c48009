"""Benchmark: how the Telegram bot holds up while hostile uploads are refused.

    /work/main/.venv/bin/python -m tests.benchmarks.hostile_uploads [--attackers 3] [--rounds 3] [--helps 10]

Drives the real python-telegram-bot adapter, with the real services and models of a bot
process (`build_meme_maker` from `Settings`), against the loopback fake Bot API, and prints:

- the wall time from sending the decode-cost GIF (a 6000x6000 canvas of 300 tiny frames,
  tests/hostile_media.py) with /addtemplate to the one-line refusal in its status message
  (goal: under 5 s);
- the latency of /help (from sending it to its answer) while `attackers` people each send,
  `rounds` times, the decode-cost GIF and a minute-long video to /addtemplate and a
  400-megapixel still as a selfie (goal: under 1 s, the worst one);
- how long all those uploads took to be answered, and with what: each should get one line
  that says why it was refused (an internal error, "Something went wrong", is counted apart).

Exit status 0 when both goals are met and every upload got its one-line refusal. Not
collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from memeswap.bot.adapters.telegram.application import TelegramAdapter
from memeswap.bot.assembly import build_meme_maker, open_services
from memeswap.bot.settings import Settings
from tests.fakes.telegram_api import FakeTelegram
from tests.hostile_media import decode_cost_gif, huge_canvas_png, long_video

TOKEN = "123456:BENCH-TOKEN"
REFUSAL_GOAL_S = 5.0
HELP_GOAL_S = 1.0


INTERNAL_ERROR = "Something went wrong"


def final_answers(fake: FakeTelegram, chat: dict) -> list[str]:
    """The bot's final words in a chat: messages (status messages as edited) that start
    with a warning or a tick."""
    return [text for m in fake.messages_to(chat["id"]) if (text := m.get("text") or "")[:1] in ("⚠", "✅")]


async def answered(fake: FakeTelegram, chats: dict[int, tuple[dict, int]], timeout: float) -> list[str]:
    """Waits until each chat has as many final answers as uploads were sent there."""
    def done() -> bool:
        return all(len(final_answers(fake, chat)) >= sent for chat, sent in chats.values())

    await fake.wait_for(done, timeout)
    return [text for chat, _ in chats.values() for text in final_answers(fake, chat)]


async def help_latency(fake: FakeTelegram, chat: dict, user: dict) -> float:
    before = len(fake.messages_to(chat["id"]))
    started = time.monotonic()
    fake.send_text(chat, user, "/help")
    await fake.wait_for(lambda: len(fake.messages_to(chat["id"])) > before, 30)
    return time.monotonic() - started


async def bench(attackers: int, rounds: int, helps: int, folder: Path) -> bool:
    gif = decode_cost_gif()
    still = huge_canvas_png()
    video = long_video(folder / "long.mp4").read_bytes()
    async with FakeTelegram(token=TOKEN) as fake:
        settings = Settings(_env_file=None, data_dir=folder / "data", telegram_token=TOKEN,
                            telegram_api_url=fake.base_url, telegram_file_url=fake.base_file_url, ops_port=0)
        maker = await asyncio.to_thread(build_meme_maker, settings)
        async with open_services(settings, maker=maker) as services:
            async with TelegramAdapter(services, poll_timeout_s=1).running():
                reader = fake.user(1, "Reader")
                reader_chat = fake.private_chat(reader)
                await help_latency(fake, reader_chat, reader)  # warm up

                mallory = fake.user(2, "Mallory")
                mallory_chat = fake.private_chat(mallory)
                started = time.monotonic()
                fake.send_document(mallory_chat, mallory, gif, "party.gif", "image/gif", caption="/addtemplate party")
                [refusal] = await answered(fake, {2: (mallory_chat, 1)}, 600)
                refusal_s = time.monotonic() - started
                print(f"decode-cost GIF (6000x6000, 300 frames, {len(gif)} bytes) refused in {refusal_s:.2f} s "
                      f"(goal < {REFUSAL_GOAL_S:g} s): {refusal}")

                chats = {}
                started = time.monotonic()
                for index in range(attackers):
                    attacker = fake.user(100 + index, f"Attacker {index}")
                    chat = fake.private_chat(attacker)
                    for _ in range(rounds):
                        fake.send_document(chat, attacker, gif, "party.gif", "image/gif", caption="/addtemplate party")
                        fake.send_document(chat, attacker, still, "me.png", "image/png")
                        fake.send_animation(chat, attacker, video, caption="/addtemplate long", file_name="long.mp4")
                    chats[attacker["id"]] = (chat, 3 * rounds)
                latencies = [await help_latency(fake, reader_chat, reader) for _ in range(helps)]
                answers = await answered(fake, chats, 600)
                all_answered_s = time.monotonic() - started
    worst = max(latencies)
    print(f"/help while {len(answers)} hostile uploads ({attackers} people x {rounds} rounds of the decode-cost "
          f"GIF, a 400 MP still, a 60 s video) were refused: median {statistics.median(latencies):.3f} s, "
          f"worst {worst:.3f} s over {helps} (goal < {HELP_GOAL_S:g} s)")
    internal = sum(INTERNAL_ERROR in a for a in answers)
    print(f"all {len(answers)} answered in {all_answered_s:.2f} s; {len(answers) - internal} refused with their "
          f"reason, {internal} with an internal error:")
    for text, count in sorted(Counter(answers).items()):
        print(f"  {count:3d} x {text}")
    return refusal_s < REFUSAL_GOAL_S and worst < HELP_GOAL_S and internal == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--helps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memeswap-bench-") as folder:
        met = asyncio.run(bench(args.attackers, args.rounds, args.helps, Path(folder)))
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
