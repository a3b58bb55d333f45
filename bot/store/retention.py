"""Retention: forget stories and deliveries older than ``FW_RETENTION_DAYS``, a little at a time.

A year of a busy install is millions of rows; nothing else ever deletes them. The pass runs as a
scheduled job (hourly) and deletes in small batches, each its own short transaction with a pause
after it, so ingest and the outbox never wait long for the write lock (SQLite has one writer).

What stays, whatever its age:
- a story still referenced by an open delivery (pending or sending), by id or by its cluster;
- a story or delivery that a reader's feedback names, and a story labelled in the console's
  Review page: both are labelled data for ``train``;
- a cluster while any of its stories remains.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, not_, or_, select

from bot.store import models as m
from bot.store.repo import Store, rowcount

log = logging.getLogger(__name__)

BATCH = 500  # rows per transaction: a few milliseconds of write lock each
PAUSE_SECONDS = 0.05  # between batches, so waiting writers get the lock


@dataclass(slots=True)
class RetentionReport:
    cutoff: datetime
    stories: int = 0
    deliveries: int = 0
    clusters: int = 0

    @property
    def total(self) -> int:
        return self.stories + self.deliveries + self.clusters


class Retention:
    """Prunes rows older than ``days`` (0 = keep everything)."""

    def __init__(self, store: Store, days: int, *, batch: int = BATCH, pause: float = PAUSE_SECONDS) -> None:
        self.store = store
        self.days = days
        self.batch = batch
        self.pause = pause

    async def prune(self, now: datetime, *, max_batches: int | None = None) -> RetentionReport:
        """One pass: batches until nothing old is left (or ``max_batches`` ran)."""
        report = RetentionReport(cutoff=now - timedelta(days=self.days))
        if self.days <= 0:
            return report
        batches = 0
        for step in (self._delete_deliveries, self._delete_stories):
            while max_batches is None or batches < max_batches:
                removed = await step(report)
                batches += 1
                if removed < self.batch:
                    break
                await asyncio.sleep(self.pause)
        if report.total:
            log.info(
                "retention: removed %d stories, %d clusters and %d deliveries older than %s",
                report.stories,
                report.clusters,
                report.deliveries,
                report.cutoff.date().isoformat(),
            )
        return report

    async def _delete_deliveries(self, report: RetentionReport) -> int:
        d = m.Delivery
        old = (
            select(d.id)
            .where(
                d.created_at < report.cutoff,
                d.status.not_in(m.OPEN_DELIVERY_STATES),
                not_(exists().where(m.Feedback.delivery_id == d.id)),
            )
            .order_by(d.id)
            .limit(self.batch)
        )
        async with self.store.sessions.begin() as session:
            ids = list((await session.scalars(old)).all())
            if ids:
                await session.execute(delete(d).where(d.id.in_(ids)))
        report.deliveries += len(ids)
        return len(ids)

    async def _delete_stories(self, report: RetentionReport) -> int:
        s, d = m.Story, m.Delivery
        still_wanted = exists().where(
            d.status.in_(m.OPEN_DELIVERY_STATES),
            or_(d.story_id == s.id, and_(d.cluster_id == s.cluster_id, d.cluster_id > 0)),
        )
        old = (
            select(s.id, s.cluster_id)
            .where(
                s.first_seen_at < report.cutoff,
                not_(still_wanted),
                not_(exists().where(m.Feedback.story_id == s.id)),
                not_(exists().where(m.ReviewLabel.story_id == s.id)),  # a console label: same
            )
            .order_by(s.id)
            .limit(self.batch)
        )
        async with self.store.sessions.begin() as session:
            rows = (await session.execute(old)).all()
            ids = [r[0] for r in rows]
            if not ids:
                return 0
            clusters = sorted({r[1] for r in rows if r[1] is not None})
            await session.execute(delete(m.Classification).where(m.Classification.story_id.in_(ids)))
            await session.execute(delete(m.SourceEntry).where(m.SourceEntry.story_id.in_(ids)))
            await session.execute(delete(s).where(s.id.in_(ids)))
            emptied = await session.execute(
                delete(m.Cluster).where(
                    m.Cluster.id.in_(clusters), not_(exists().where(s.cluster_id == m.Cluster.id))
                )
            )
            report.clusters += rowcount(emptied)
        report.stories += len(ids)
        return len(ids)
