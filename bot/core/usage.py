"""How many swaps a user has asked for, for the daily quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from memeswap.bot.core.requesters import Requester
from memeswap.bot.core.users import user_for
from memeswap.bot.store.database import Database
from memeswap.bot.store.models import UsageEvent
from memeswap.inference.errors import InputError

DAY = timedelta(days=1)


class SwapQuota:
    def __init__(self, database: Database, per_day: int = 50) -> None:
        self.database = database
        self.per_day = per_day

    async def refund(self, requester: Requester, at: datetime) -> None:
        """Take back a swap that was counted but never ran (the service refused the job)."""
        async with self.database.transaction() as session:
            user = await user_for(session, requester)
            await session.execute(delete(UsageEvent).where(UsageEvent.user_id == user.id, UsageEvent.at == at))

    async def spend(self, requester: Requester, now: datetime | None = None) -> int:
        """Count one swap for the requester, or refuse when the last 24 hours hold `per_day`
        already; returns how many are left. Rows older than two days are pruned."""
        now = now or datetime.now(UTC)
        async with self.database.transaction() as session:
            user = await user_for(session, requester)
            used = (await session.execute(select(func.count()).where(UsageEvent.user_id == user.id,
                                                                     UsageEvent.at > now - DAY))).scalar_one()
            if used >= self.per_day:
                raise InputError(f"you've made {used} memes in the last 24 hours, the most for one day; "
                                 "try again later", code="quota")
            session.add(UsageEvent(user_id=user.id, kind="swap", at=now))
            await session.execute(delete(UsageEvent).where(UsageEvent.user_id == user.id,
                                                           UsageEvent.at < now - 2 * DAY))
        return self.per_day - used - 1
