"""The "Report" button under every meme, as use cases both adapters and the CLI share.

A swap job is recorded when it starts (`issue`: its template and the scope it runs in, never
who asked, the selfie or the meme), so that a report names a job this bot made. A report is
one row per reporter and job plus an audit entry; a template reported by `hide_after`
different people in one scope is hidden there (not listed, not offered, not swappable)
until an admin or the operator decides: "hide" keeps it hidden, "keep" shows it again and
closes the reports (new ones count afresh).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from memeswap.bot.core.requesters import NotAllowedError, Requester, Scope
from memeswap.bot.core.users import user_for
from memeswap.bot.store.database import Database
from memeswap.bot.store.models import AuditEntry, IssuedMeme, TemplateReport, User, utc_now
from memeswap.inference.errors import InputError
from memeswap.inference.templates.scope_keys import SCOPE_KEY

log = logging.getLogger("memeswap.reports")

REPORTABLE_FOR = timedelta(days=30)  # a meme older than this can no longer be reported
JOB_ID = re.compile(r"[0-9a-f]{32}")  # `new_job_id`: a uuid4's hex
THANKS = "Thanks — a moderator will look at it."
GONE = "I can't find that meme any more, so it can't be reported."

Decision = Literal["hide", "keep"]


class UnknownMemeError(InputError):
    code = "unknown_meme"

    def __init__(self) -> None:
        super().__init__(GONE)


@dataclass(frozen=True)
class ReportRow:
    """One report as the operator sees it."""

    id: int
    at: datetime
    scope_key: str
    template: str
    reporter: str  # "discord:123", or "(forgotten)" once that person asked to be forgotten
    decision: str | None


@dataclass(frozen=True)
class OpenCase:
    """A template with open reports in one scope, as a scope's admin sees it (not who reported)."""

    template: str
    reports: int
    report_id: int  # the oldest open report: what a decision names
    hidden: bool


@dataclass(frozen=True)
class Resolution:
    template: str
    scope_key: str
    decision: Decision
    reports: int  # how many reports of that template in that scope the decision closed


class TemplateReports:
    def __init__(self, database: Database, hide_after: int = 3) -> None:
        self.database = database
        self.hide_after = hide_after

    async def issue(self, job_id: str, template_ref: str, scope: Scope) -> None:
        """Record a job this bot started, so its meme can be reported; prunes old records."""
        now = utc_now()
        async with self.database.transaction() as session:
            await session.execute(delete(IssuedMeme).where(IssuedMeme.created_at < now - REPORTABLE_FOR))
            session.add(IssuedMeme(job_id=job_id, template=template_ref, scope_key=scope.key, created_at=now))

    async def report(self, reporter: Requester, job_id: str) -> bool:
        """Report the meme of `job_id` (as a button sends it: untrusted). Returns False when
        this person had reported it already (nothing more is written). Raises
        `UnknownMemeError` for a job this bot did not start, or one too old."""
        if not JOB_ID.fullmatch(job_id):
            raise UnknownMemeError()
        try:
            async with self.database.transaction() as session:
                issued = await session.scalar(select(IssuedMeme).where(IssuedMeme.job_id == job_id))
                if issued is None or _aware(issued.created_at) < utc_now() - REPORTABLE_FOR:
                    raise UnknownMemeError()
                user = await user_for(session, reporter)
                if await session.scalar(select(TemplateReport.id).where(TemplateReport.job_id == job_id,
                                                                        TemplateReport.reporter_id == user.id)):
                    return False
                session.add(TemplateReport(job_id=job_id, template=issued.template, scope_key=issued.scope_key,
                                           reporter_id=user.id))
                session.add(AuditEntry(actor_id=user.id, action="template.report", scope_key=issued.scope_key,
                                       subject=issued.template[:100]))
                await session.flush()
                if await self._open_reporters(session, issued.scope_key, issued.template) == self.hide_after:
                    session.add(AuditEntry(actor_id=None, action="template.hidden", scope_key=issued.scope_key,
                                           subject=issued.template[:100]))
                    log.warning("template %s is hidden in %s after %d reports", issued.template, issued.scope_key,
                                self.hide_after)
        except IntegrityError:  # the same person's second press, committed first by a concurrent one
            return False
        return True

    async def hidden(self, scope_key: str) -> set[str]:
        """The template refs hidden in the scope `scope_key`: decided "hide", or reported by
        `hide_after` different people since the last decision."""
        async with self.database.transaction() as session:
            rows = (await session.execute(
                select(TemplateReport.template, TemplateReport.decision,
                       func.count(func.distinct(TemplateReport.reporter_id)))
                .where(TemplateReport.scope_key == scope_key,
                       TemplateReport.decision.is_(None) | (TemplateReport.decision == "hide"))
                .group_by(TemplateReport.template, TemplateReport.decision))).all()
        return {template for template, decision, reporters in rows
                if decision == "hide" or reporters >= self.hide_after}

    async def listed(self, scope_key: str | None = None, open_only: bool = False, limit: int = 200) -> list[ReportRow]:
        """The newest reports first (at most `limit`), of one scope or all, open ones or all."""
        if scope_key is not None and scope_key != "global" and not SCOPE_KEY.fullmatch(scope_key):
            raise InputError(f"not a scope: {scope_key[:40]!r} (e.g. discord-guild-123, telegram-chat--100456)")
        query = (select(TemplateReport, User.platform, User.platform_user_id)
                 .outerjoin(User, User.id == TemplateReport.reporter_id)
                 .order_by(TemplateReport.id.desc()).limit(limit))
        if scope_key is not None:
            query = query.where(TemplateReport.scope_key == scope_key)
        if open_only:
            query = query.where(TemplateReport.decision.is_(None))
        async with self.database.transaction() as session:
            rows = (await session.execute(query)).all()
        return [ReportRow(r.id, _aware(r.created_at), r.scope_key, r.template,
                          f"{platform}:{user_id}" if platform else "(forgotten)", r.decision)
                for r, platform, user_id in rows]

    async def open_cases(self, scope_key: str, limit: int = 20) -> list[OpenCase]:
        """The templates with open reports in a scope, most reported first (at most `limit`)."""
        async with self.database.transaction() as session:
            rows = (await session.execute(
                select(TemplateReport.template, func.count(), func.min(TemplateReport.id))
                .where(TemplateReport.scope_key == scope_key, TemplateReport.decision.is_(None))
                .group_by(TemplateReport.template)
                .order_by(func.count().desc(), func.min(TemplateReport.id)).limit(limit))).all()
        hidden = await self.hidden(scope_key) if rows else set()
        return [OpenCase(template, count, first, template in hidden) for template, count, first in rows]

    async def resolve(self, resolver: Requester, report_id: int, decision: Decision) -> Resolution:
        """Decide for the template and scope of report `report_id`: "hide" closes its open
        reports and keeps it hidden there; "keep" closes them (and any earlier "hide") and
        shows it again. Only the operator, or an admin of that scope, decides; to anyone
        else a report of another scope does not exist."""
        async with self.database.transaction() as session:
            report = await session.get(TemplateReport, report_id) if 0 < report_id < 2 ** 31 else None
            if report is None or not (resolver.is_operator or resolver.scope.key == report.scope_key):
                where = "" if resolver.is_operator else " here"
                raise InputError(f"no report #{str(report_id)[:20]}{where}", code="unknown_report")
            if not (resolver.is_operator or resolver.is_scope_admin):
                raise NotAllowedError("only an admin of this place can decide on its reports")
            # "keep" also lifts an earlier "hide"; "hide" marks this report at least, so the
            # template stays hidden even when its reports were closed before.
            changed = (TemplateReport.decision.is_(None) |
                       (TemplateReport.decision == "hide" if decision == "keep" else TemplateReport.id == report_id))
            which = (TemplateReport.scope_key == report.scope_key, TemplateReport.template == report.template,
                     changed)
            closed = await session.scalar(select(func.count()).select_from(TemplateReport).where(*which)) or 0
            await session.execute(update(TemplateReport).where(*which).values(decision=decision,
                                                                              decided_at=utc_now()))
            user = await user_for(session, resolver)
            session.add(AuditEntry(actor_id=user.id, action=f"template.report.{decision}", scope_key=report.scope_key,
                                   subject=report.template[:100]))
            return Resolution(report.template, report.scope_key, decision, closed)

    @staticmethod
    async def _open_reporters(session, scope_key: str, template: str) -> int:
        return (await session.scalar(select(func.count(func.distinct(TemplateReport.reporter_id))).where(
            TemplateReport.scope_key == scope_key, TemplateReport.template == template,
            TemplateReport.decision.is_(None)))) or 0


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
