"""Users as the store knows them: a platform and that platform's user id, nothing more."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.requesters import Requester
from bot.store.models import User


async def find_user(session: AsyncSession, requester: Requester) -> User | None:
    return await session.scalar(select(User).where(User.platform == requester.platform,
                                                   User.platform_user_id == requester.user_id))


async def user_for(session: AsyncSession, requester: Requester) -> User:
    """The requester's row, created on first use (inside the caller's transaction)."""
    user = await find_user(session, requester)
    if user is None:
        user = User(platform=requester.platform, platform_user_id=requester.user_id)
        session.add(user)
        await session.flush()
    return user
