"""What the database says about the bot's health right now: sources failing, the outbox's depth and
age, digest lag. The same on every replica (read at each scrape of ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import models as m

__all__ = ["DatabaseFigures", "read_database_figures"]


@dataclass(frozen=True, slots=True)
class DatabaseFigures:
    """What the database says right now (the same on every replica)."""

    sources_enabled: int
    sources_failing: int
    outbox_depth: int
    oldest_open_age_seconds: float
    digest_lag_seconds: float


async def read_database_figures(engine: AsyncEngine, now: datetime) -> DatabaseFigures:
    """Four aggregate queries, each served by an index or a small table (sources, destinations,
    and the open rows of the outbox, which ``ix_deliveries_due`` finds by status)."""
    open_rows = m.Delivery.status.in_(m.OPEN_DELIVERY_STATES)
    async with engine.connect() as conn:
        enabled, failing = (
            await conn.execute(
                select(
                    func.count(),
                    func.count().filter(m.Source.failure_count > 0),
                ).where(m.Source.enabled.is_(True))
            )
        ).one()
        d = m.Destination
        # Only channels that can receive now: a paused or unreachable channel's rows and schedule
        # wait on purpose, and must not read as a stuck outbox or a digest clock that stopped.
        receiving = (d.active.is_(True), d.paused_at.is_(None))
        depth, oldest = (
            await conn.execute(
                select(func.count(), func.min(m.Delivery.created_at))
                .join(d, d.id == m.Delivery.destination_id)
                .where(open_rows, *receiving)
            )
        ).one()
        overdue = await conn.scalar(
            select(func.min(d.next_digest_at)).where(
                *receiving, d.digest_frequency != "off", d.next_digest_at <= now
            )
        )
    return DatabaseFigures(
        sources_enabled=int(enabled or 0),
        sources_failing=int(failing or 0),
        outbox_depth=int(depth or 0),
        oldest_open_age_seconds=_age(oldest, now),
        digest_lag_seconds=_age(overdue, now),
    )


def _age(then: datetime | None, now: datetime) -> float:
    """Seconds since ``then`` (aware UTC: ``min()`` keeps the column's UTCDateTime type), 0 for none."""
    if then is None:
        return 0.0
    return max(0.0, (now - then).total_seconds())
