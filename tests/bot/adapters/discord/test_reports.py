"""The "Report" button under a Discord meme, pressed through the loopback Discord: a report
lands in the audit log, once per person, a meme too old to report gets one polite line, and a
template two people reported is hidden in that server only (hostile payloads: tests/bot/core/test_reports.py
and the Telegram button's tests)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from memeswap.bot.core.reports import REPORTABLE_FOR
from memeswap.bot.store.models import AuditEntry, IssuedMeme, TemplateReport, utc_now
from tests.bot.adapters.discord.conftest import GUILD, OTHER_GUILD, final_response
from tests.fakes.discord_api import PERM_MANAGE_GUILD

THANKS = "Thanks — a moderator will look at it."
GONE = "I can't find that meme any more, so it can't be reported."


def test_two_reports_hide_the_template_in_that_server(discord_bot, selfie_jpeg):
    async def main():
        async with discord_bot(reports_to_hide=2) as world:
            fake = world.fake
            alice, bob, carol = fake.user(7, "alice"), fake.user(8, "bob"), fake.user(9, "carol")
            for person in (alice, bob, carol):
                fake.member(GUILD, person)
            selfie = fake.attachment(world.channel["id"], selfie_jpeg, "me.jpg", "image/jpeg")
            swap = await final_response(fake, fake.slash_command(GUILD, world.channel, alice, "swap",
                                                                 {"template": "bounce", "selfie": selfie}))
            [[button]] = [row["components"] for row in swap["components"]]

            async def press(person, custom_id: str) -> str:
                pressed = fake.press_button(GUILD, world.channel, person, swap["id"], custom_id)
                await fake.wait_for(lambda: fake.callbacks(pressed))
                [answer] = fake.callbacks(pressed)
                assert answer["data"]["flags"] & 64, answer  # seen by the reporter only
                return answer["data"]["content"]

            answers = [await press(bob, button["custom_id"]), await press(bob, button["custom_id"])]
            still_offered = await fake.autocomplete_choices(
                fake.autocomplete(GUILD, world.channel, carol, "swap", {"template": "bou"}, focused="template"))
            answers.append(await press(carol, button["custom_id"]))
            offered_here = await fake.autocomplete_choices(
                fake.autocomplete(GUILD, world.channel, carol, "swap", {"template": "bou"}, focused="template"))
            fake.member(OTHER_GUILD, carol)
            offered_there = await fake.autocomplete_choices(
                fake.autocomplete(OTHER_GUILD, world.other_channel, carol, "swap", {"template": "bou"},
                                  focused="template"))
            async with world.services.database.transaction() as session:  # a meme too old to report
                await session.execute(update(IssuedMeme).values(created_at=utc_now() - REPORTABLE_FOR - timedelta(1)))
            dan = fake.user(10, "dan")
            too_old = await press(dan, button["custom_id"])
            named = await final_response(fake, fake.slash_command(GUILD, world.channel, alice, "swap",
                                                                  {"template": "bounce", "selfie": selfie}))
            ada = fake.user(11, "ada")
            fake.member(GUILD, ada, PERM_MANAGE_GUILD)
            async def answer(interaction) -> str:
                await fake.wait_for(lambda: fake.callbacks(interaction))
                return fake.callbacks(interaction)[0]["data"]["content"]

            listed = await answer(fake.slash_command(GUILD, world.channel, ada, "templates-admin reports"))
            number = int(listed.split()[0].lstrip("#"))
            decided = await answer(fake.slash_command(GUILD, world.channel, ada, "templates-admin resolve",
                                                      {"report": number, "decision": "keep"}))
            offered_again = await fake.autocomplete_choices(
                fake.autocomplete(GUILD, world.channel, carol, "swap", {"template": "bou"}, focused="template"))
            async with world.services.database.transaction() as session:
                audit = [(a.action, a.scope_key, a.subject) for a in await session.scalars(
                    select(AuditEntry).where(AuditEntry.action.startswith("template.")).order_by(AuditEntry.id))]
                reports = len((await session.scalars(select(TemplateReport))).all())
            return (button, answers, too_old, still_offered, offered_here, offered_there, named, audit, reports,
                    listed, decided, offered_again)

    (button, answers, too_old, still_offered, offered_here, offered_there, named, audit, reports, listed, decided,
     offered_again) = asyncio.run(main())
    assert button["label"] == "Report" and button["custom_id"].startswith("memeswap:report:")
    assert answers == [THANKS] * 3 and too_old == GONE
    assert "bounce" in [c["value"] for c in still_offered]
    assert "bounce" not in [c["value"] for c in offered_here] and "bounce" in [c["value"] for c in offered_there]
    assert named["content"] == ("⚠️ The template 'bounce' is hidden here after people reported it, until a "
                                "moderator looks at it.") and named["attachments"] == []
    here = f"discord-guild-{GUILD}"
    assert audit == [("template.report", here, "bounce")] * 2 + [("template.hidden", here, "bounce"),
                                                                  ("template.report.keep", here, "bounce")]
    assert listed.splitlines()[0].endswith("“bounce”: 2 reports (hidden here)")  # nobody's name
    assert decided == "“bounce” is shown here again."
    assert "bounce" in [c["value"] for c in offered_again]
    assert reports == 2  # bob's second press changed nothing
