"""A person's row is created once, even when their first requests arrive together."""

import asyncio

from sqlalchemy import func, select

from memeswap.bot.core.requesters import Requester
from memeswap.bot.core.users import user_for
from memeswap.bot.store.models import User

FIRST_TIMER = Requester.direct("telegram", "4242")


def test_concurrent_first_requests_share_one_user_row(database):
    async def one_request() -> int:
        async with database.transaction() as session:
            user = await user_for(session, FIRST_TIMER)
            await asyncio.sleep(0.01)  # hold the transaction open while the others run
            return user.id

    async def main():
        ids = await asyncio.gather(*(one_request() for _ in range(8)))
        async with database.transaction() as session:
            rows = await session.scalar(select(func.count()).select_from(User))
        return ids, rows

    ids, rows = asyncio.run(main())
    assert rows == 1 and len(set(ids)) == 1
