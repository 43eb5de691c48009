"""The "Report" button under a Telegram meme, pressed through the loopback Telegram: one
report per person and meme in the audit log, hostile callback data answered with one polite
line, and a template two people reported hidden in that group only."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from memeswap.bot.store.models import AuditEntry, TemplateReport
from tests.bot.adapters.telegram.test_conversation import bot_message, buttons, replying_to, sent

GROUP = -100800
THANKS = "Thanks — a moderator will look at it."
GONE = "I can't find that meme any more, so it can't be reported."
HOSTILE = ["report:", "report:../../etc/passwd", "report:" + "0" * 32, "report:" + "a" * 300, "report:🙂",
           "report:%s"]


def test_two_reports_hide_the_template_in_that_group(telegram_bot, selfie_jpeg):
    async def main():
        async with telegram_bot(reports_to_hide=2) as (fake, services):
            alice, bob, carol = fake.user(7, "Alice"), fake.user(8, "Bob"), fake.user(9, "Carol")
            group = fake.group_chat(GROUP, "Memes")
            photo = fake.send_photo(group, alice, selfie_jpeg, caption="/swap")
            picker = await bot_message(fake, GROUP, replying_to(photo))
            fake.press_button(group, alice, picker, "photo:bounce")
            meme = await bot_message(fake, GROUP, lambda m: "animation" in m)
            [report] = buttons(meme)

            async def press(person, data: str, honest: bool = True, message: dict = meme) -> str | None:
                query = (fake.press_button if honest else fake.send_callback)(group, person, message, data)
                await fake.wait_for(lambda: query["id"] in fake.answered_callbacks())
                [answer] = [a for a in sent(fake, "answerCallbackQuery")
                            if a["params"]["callback_query_id"] == query["id"]]
                return answer["params"].get("text")

            answers = [await press(bob, report), await press(bob, report)]
            hostile = [await press(carol, data, honest=False) for data in HOSTILE]
            answers.append(await press(carol, report))
            refusal = await press(alice, "photo:bounce", message=picker)  # the same pick, now hidden here
            listing = await bot_message(fake, GROUP, replying_to(fake.send_text(group, alice, "/templates")))
            private = fake.private_chat(alice)
            own = await bot_message(fake, 7, replying_to(fake.send_text(private, alice, "/templates")))

            async def said(person, text: str) -> str:
                return (await bot_message(fake, GROUP, replying_to(fake.send_text(group, person, text))))["text"]

            fake.set_admins(GROUP, [9])  # carol administers the group
            decisions = {"member": await said(bob, "/reports")}
            decisions["listed"] = await said(carol, "/reports")
            number = decisions["listed"].split()[0].lstrip("#")
            for text in ("/resolve ² keep", "/resolve 9999999999 hide", f"/resolve {number} maybe", "/resolve"):
                decisions[text] = await said(carol, text)
            decisions["unknown"] = await said(carol, "/resolve 999 keep")
            decisions["kept"] = await said(carol, f"/resolve {number} keep")
            shown_again = await bot_message(fake, GROUP, replying_to(fake.send_text(group, alice, "/templates")))
            async with services.database.transaction() as session:
                audit = [(a.action, a.scope_key, a.subject) for a in await session.scalars(
                    select(AuditEntry).where(AuditEntry.action.startswith("template.")).order_by(AuditEntry.id))]
                reports = len((await session.scalars(select(TemplateReport))).all())
            return (report, answers, hostile, refusal, buttons(listing), buttons(own), audit, reports, decisions,
                    buttons(shown_again))

    (report, answers, hostile, refusal, in_group, in_private, audit, reports, decisions,
     again) = asyncio.run(main())
    assert report.startswith("report:") and len(report.encode()) <= 64
    assert answers == [THANKS] * 3 and hostile == [GONE] * len(HOSTILE)
    assert refusal == ("⚠️ The template 'bounce' is hidden here after people reported it, until a moderator "
                       "looks at it.")
    assert "face:bounce" not in in_group and "face:bounce" in in_private
    here = f"telegram-chat-{GROUP}"
    assert audit == [("template.report", here, "bounce")] * 2 + [("template.hidden", here, "bounce"),
                                                                  ("template.report.keep", here, "bounce")]
    assert decisions.pop("member") == "⚠️ Only an admin of this group can see its reports."
    assert decisions.pop("listed").splitlines()[0].endswith("“bounce”: 2 reports (hidden here)")
    assert decisions.pop("unknown") == "⚠️ No report #999 here."
    assert decisions.pop("kept") == "“bounce” is shown here again." and "face:bounce" in again
    usage = "⚠️ /resolve NUMBER hide|keep keeps a reported template hidden here, or shows it again."
    assert set(decisions.values()) == {usage}, decisions
    assert reports == 2
