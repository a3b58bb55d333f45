"""The web console's failed sign-ins, in the database, so the sign-in limit is one limit for
every replica behind a load balancer (``bot/console/auth.py``: ``SignInLimiter``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import models as m
from bot.store.db import session_factory

__all__ = ["SignInFailures"]

MAX_ADDRESS = 100  # longer strings are cut: an address is what the column holds, not what a header says


class SignInFailures:
    """Wrong passwords per client address, with when they happened."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)

    async def record(self, address: str, at: datetime, forget_before: datetime) -> int:
        """Record a failure (its id), and delete every address's failures older than
        ``forget_before``: the table holds one window of failures, however long the bot runs."""
        f = m.SignInFailure
        async with self.sessions.begin() as session:
            await session.execute(delete(f).where(f.at <= forget_before))
            row = f(address=address[:MAX_ADDRESS], at=at)
            session.add(row)
            await session.flush()
            return row.id

    async def since(
        self, address: str, cutoff: datetime, before: int | None = None
    ) -> tuple[int, datetime | None]:
        """How many failures ``address`` had after ``cutoff`` (only those recorded before the
        failure with id ``before``, when given), and the oldest of them."""
        f = m.SignInFailure
        query = select(func.count(), func.min(f.at)).where(f.address == address[:MAX_ADDRESS], f.at > cutoff)
        if before is not None:
            query = query.where(f.id < before)
        async with self.sessions() as session:
            row = (await session.execute(query)).one()
        return int(row[0]), row[1]

    async def forget(self, failure_id: int) -> None:
        f = m.SignInFailure
        async with self.sessions.begin() as session:
            await session.execute(delete(f).where(f.id == failure_id))

    async def clear(self, address: str) -> None:
        f = m.SignInFailure
        async with self.sessions.begin() as session:
            await session.execute(delete(f).where(f.address == address[:MAX_ADDRESS]))
