"""Users as the store knows them: a platform and that platform's user id, nothing more."""

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from memeswap.bot.core.requesters import Requester
from memeswap.bot.store.models import User, utc_now


async def find_user(session: AsyncSession, requester: Requester) -> User | None:
    return await session.scalar(select(User).where(User.platform == requester.platform,
                                                   User.platform_user_id == requester.user_id))


async def user_for(session: AsyncSession, requester: Requester) -> User:
    """The requester's row, created on first use (inside the caller's transaction).

    Two first requests of one person can race (two taps at once); the insert yields to a
    row the other one committed instead of failing on the unique constraint.
    """
    user = await find_user(session, requester)
    if user is None:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(User).values(
            platform=requester.platform, platform_user_id=requester.user_id, created_at=utc_now(),
        ).on_conflict_do_nothing(index_elements=["platform", "platform_user_id"]))
        user = await find_user(session, requester)
        assert user is not None, "the row is there: inserted now, or by the request that won the race"
    return user
