"""Reports of memes, through the use cases both bots and the CLI share: only jobs this bot
started, one report per person and job, a template hidden in one place after N people, and
decisions that hide it for good or show it again."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from memeswap.bot.core.reports import REPORTABLE_FOR, TemplateReports, UnknownMemeError
from memeswap.bot.core.requesters import GLOBAL, Requester, Scope
from memeswap.bot.core.templates import CustomTemplates
from memeswap.bot.store.models import AuditEntry, IssuedMeme, TemplateReport, utc_now
from memeswap.inference.errors import InputError

GUILD_A = Scope("guild", "discord", "111")
GUILD_B = Scope("guild", "discord", "222")
ADMIN_A = Requester("discord", "1", GUILD_A, is_scope_admin=True)
ADMIN_B = Requester("discord", "9", GUILD_B, is_scope_admin=True)
OPERATOR = Requester("cli", "operator", GLOBAL, is_operator=True)
PEOPLE = [Requester("discord", str(n), GUILD_A) for n in (2, 3, 4)]
JOBS = [f"{n:032x}" for n in (0xA1, 0xA2, 0xA3, 0xA4)]


def names(infos) -> set[str]:
    return {i.name for i in infos}


def test_two_people_hide_a_builtin_in_their_server_only_until_a_decision(database, scoped_library):
    reports = TemplateReports(database, hide_after=2)
    templates = CustomTemplates(database, scoped_library, reports=reports)

    async def main():
        for job in JOBS:
            await reports.issue(job, "bounce", GUILD_A)
        first = await reports.report(PEOPLE[0], JOBS[0])
        again = await reports.report(PEOPLE[0], JOBS[0])  # the same press twice: one report
        still_shown = names(await templates.visible(PEOPLE[1]))
        await reports.report(PEOPLE[1], JOBS[1])
        hidden_here = names(await templates.visible(PEOPLE[1]))
        shown_there = names(await templates.visible(ADMIN_B))
        with pytest.raises(InputError) as named:
            await templates.resolve(PEOPLE[2], "bounce")
        open_reports = await reports.listed(GUILD_A.key, open_only=True)
        with pytest.raises(InputError, match=f"no report #{open_reports[0].id} here"):
            await reports.resolve(ADMIN_B, open_reports[0].id, "keep")  # another server's admin
        with pytest.raises(InputError, match="only an admin of this place"):
            await reports.resolve(PEOPLE[0], open_reports[0].id, "keep")  # a member
        kept = await reports.resolve(ADMIN_A, open_reports[0].id, "keep")
        shown_again = names(await templates.visible(PEOPLE[1]))
        await reports.report(PEOPLE[2], JOBS[2])  # one new report after "keep": counts afresh
        after_keep = names(await templates.visible(PEOPLE[1]))
        hid = await reports.resolve(OPERATOR, (await reports.listed(open_only=True))[0].id, "hide")
        after_hide = names(await templates.visible(PEOPLE[1]))
        async with database.transaction() as session:
            audit = [(a.action, a.scope_key, a.subject) for a in await session.scalars(
                select(AuditEntry).order_by(AuditEntry.id))]
        return (first, again, still_shown, hidden_here, shown_there, named.value, kept, shown_again, after_keep,
                hid, after_hide, audit, await reports.listed())

    (first, again, still_shown, hidden_here, shown_there, named, kept, shown_again, after_keep, hid, after_hide,
     audit, everything) = asyncio.run(main())
    assert first is True and again is False
    assert "bounce" in still_shown and "bounce" not in hidden_here and "bounce" in shown_there
    assert named.code == "hidden_template" and "'bounce' is hidden here" in str(named)
    assert (kept.template, kept.scope_key, kept.decision, kept.reports) == ("bounce", GUILD_A.key, "keep", 2)
    assert "bounce" in shown_again and "bounce" in after_keep
    assert (hid.decision, hid.reports) == ("hide", 1) and "bounce" not in after_hide
    assert audit == [("template.report", GUILD_A.key, "bounce")] * 2 + [
        ("template.hidden", GUILD_A.key, "bounce"), ("template.report.keep", GUILD_A.key, "bounce"),
        ("template.report", GUILD_A.key, "bounce"), ("template.report.hide", GUILD_A.key, "bounce")]
    assert [(r.reporter, r.decision) for r in everything] == [
        ("discord:4", "hide"), ("discord:3", "keep"), ("discord:2", "keep")]


@pytest.mark.parametrize("job_id", ["", "../../etc", "x" * 5000, f"{0xFF:032x}", JOBS[0].upper(), "🙂" * 32])
def test_a_report_names_a_job_this_bot_started(database, job_id):
    reports = TemplateReports(database)

    async def main():
        await reports.issue(JOBS[0], "bounce", GUILD_A)
        with pytest.raises(UnknownMemeError) as refused:
            await reports.report(PEOPLE[0], job_id)
        async with database.transaction() as session:
            return refused.value, (await session.scalars(select(TemplateReport))).all()

    refused, stored = asyncio.run(main())
    assert str(refused) == "I can't find that meme any more, so it can't be reported." and stored == []


def test_a_meme_too_old_cannot_be_reported_and_old_records_are_pruned(database):
    reports = TemplateReports(database)

    async def main():
        await reports.issue(JOBS[0], "bounce", GUILD_A)
        async with database.transaction() as session:
            await session.execute(update(IssuedMeme).values(created_at=utc_now() - REPORTABLE_FOR - timedelta(1)))
        with pytest.raises(UnknownMemeError):
            await reports.report(PEOPLE[0], JOBS[0])
        await reports.issue(JOBS[1], "bounce", GUILD_A)  # prunes the old record
        async with database.transaction() as session:
            return [m.job_id for m in await session.scalars(select(IssuedMeme))]

    assert asyncio.run(main()) == [JOBS[1]]


def test_forget_removes_reports_of_ones_own_dms_and_ones_name_on_the_others(database, scoped_library):
    from memeswap.bot.core.faces import forget_user

    reports = TemplateReports(database)
    templates = CustomTemplates(database, scoped_library, reports=reports)
    ana = Requester.direct("discord", "5")

    async def main():
        await reports.issue(JOBS[0], "bounce", ana.scope)  # a meme made in her own DM
        await reports.issue(JOBS[1], "bounce", GUILD_A)
        await reports.report(ana, JOBS[0])
        await reports.report(Requester("discord", "5", GUILD_A), JOBS[1])
        await forget_user(database, templates, ana)
        async with database.transaction() as session:
            issued = [m.job_id for m in await session.scalars(select(IssuedMeme))]
        return issued, [(r.scope_key, r.reporter) for r in await reports.listed()]

    issued, left = asyncio.run(main())
    assert issued == [JOBS[1]]
    assert left == [(GUILD_A.key, "(forgotten)")]
