"""Trends: events per topic per day, and the outlets and names that carried each topic.

**Events, not articles.** A count is of clusters (one real-world story however many outlets told
it), so a launch covered by twenty outlets is one point, like a niche story covered by one; counting
articles would measure how many feeds we follow more than what happened. A cluster counts for a
topic when one of its stories passed that topic, on the day of its earliest such story's
publication (in the caller's time zone). Publication rather than first-seen time: a source's first
poll stores its backlog at once, and by first-seen time all of it would land on the day the source
was added.

The SQL is plain ``GROUP BY`` on both databases; days and weeks are cut in Python, where the time
zone is at hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.store import models as m
from bot.store.db import session_factory
from bot.trends.entities import CaseEvidence, count_entities

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_WEEKS",
    "TopicSeries",
    "Trends",
    "TrendsStore",
    "bucket_events",
    "topic_events",
    "weekly_series",
    "window",
]

DEFAULT_DAYS = 90
DEFAULT_WEEKS = 12  # the weekly digest's chart: a quarter, one point per week
TOP = 10
SUMMARY_CHARS = 400  # of each summary, for the case statistics of names

TopicEvent = tuple[int, str, datetime]  # cluster, topic, earliest publication


@dataclass(frozen=True, slots=True)
class TopicSeries:
    """Events per topic per bucket (``day`` or ``week``), oldest bucket first."""

    bucket: str
    starts: tuple[date, ...]  # the first day of each bucket
    counts: Mapping[str, tuple[int, ...]]  # topic -> one count per bucket

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.counts)

    def total(self, topic: str) -> int:
        return sum(self.counts.get(topic, ()))

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON (an outbox row's payload, the ``--json`` output)."""
        return {
            "bucket": self.bucket,
            "starts": [d.isoformat() for d in self.starts],
            "counts": {topic: list(values) for topic, values in self.counts.items()},
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> TopicSeries:
        return cls(
            bucket=str(data["bucket"]),
            starts=tuple(date.fromisoformat(d) for d in data["starts"]),
            counts={str(t): tuple(int(n) for n in values) for t, values in data["counts"].items()},
        )


@dataclass(frozen=True, slots=True)
class Trends:
    """What the Trends page and ``frontierwatch trends`` show."""

    first_day: date
    last_day: date
    timezone: str
    daily: TopicSeries
    outlets: Mapping[str, list[tuple[str, int]]]  # topic -> (outlet, events it covered), top first
    entities: Mapping[str, list[tuple[str, int]]]  # topic -> (name, events it named), top first

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "timezone": self.timezone,
            "unit": "events (clusters of stories)",
            "daily": self.daily.to_payload(),
            "totals": {topic: self.daily.total(topic) for topic in self.daily.topics},
            "outlets": {t: [{"outlet": o, "events": n} for o, n in rows] for t, rows in self.outlets.items()},
            "entities": {t: [{"name": e, "events": n} for e, n in rows] for t, rows in self.entities.items()},
        }


def window(now: datetime, days: int, timezone: str = "UTC") -> tuple[date, datetime, datetime]:
    """(first local day, its start in UTC, ``now``): the last ``days`` days, today included."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=max(1, days) - 1)
    return first, datetime.combine(first, time(), zone).astimezone(UTC), now


def _passed_in(since: datetime, until: datetime, topics: Sequence[str] | None) -> list[Any]:
    s, c = m.Story, m.Classification
    where = [c.passed.is_(True), s.published_at >= since, s.published_at <= until]
    if topics:
        where.append(c.topic.in_(list(topics)))
    return where


async def topic_events(
    session: AsyncSession, since: datetime, until: datetime, topics: Sequence[str] | None = None
) -> list[TopicEvent]:
    """Each (cluster, topic) with a passing story published in [since, until], and the earliest
    such publication time."""
    s, c = m.Story, m.Classification
    rows = await session.execute(
        select(s.cluster_id, c.topic, func.min(s.published_at))
        .join(c, c.story_id == s.id)
        .where(*_passed_in(since, until, topics))
        .group_by(s.cluster_id, c.topic)
    )
    return [(int(cluster), str(topic), at) for cluster, topic, at in rows if cluster is not None]


def bucket_events(
    events: Iterable[TopicEvent],
    *,
    first_day: date,
    buckets: int,
    days_per_bucket: int = 1,
    timezone: str = "UTC",
    topics: Sequence[str] | None = None,
) -> TopicSeries:
    """Count events per topic into ``buckets`` of ``days_per_bucket`` local days from
    ``first_day``; events outside are left out. ``topics``: these series, in this order (zeros
    included); else every topic seen, by name."""
    zone = ZoneInfo(timezone)
    counts: dict[str, list[int]] = {t: [0] * buckets for t in topics or ()}
    for _cluster, topic, at in events:
        if topics and topic not in counts:
            continue
        index = (at.astimezone(zone).date() - first_day).days // days_per_bucket
        if 0 <= index < buckets:
            counts.setdefault(topic, [0] * buckets)[index] += 1
    order = list(topics) if topics else sorted(counts)
    return TopicSeries(
        bucket="day" if days_per_bucket == 1 else "week",
        starts=tuple(first_day + timedelta(days=i * days_per_bucket) for i in range(buckets)),
        counts={t: tuple(counts[t]) for t in order},
    )


def weekly_series(
    events: Iterable[TopicEvent],
    now: datetime,
    *,
    weeks: int = DEFAULT_WEEKS,
    timezone: str = "UTC",
    topics: Sequence[str] | None = None,
) -> TopicSeries:
    """``weeks`` seven-day buckets, the last ending today (local)."""
    first, _since, _until = window(now, weeks * 7, timezone)
    return bucket_events(
        events, first_day=first, buckets=weeks, days_per_bucket=7, timezone=timezone, topics=topics
    )


class TrendsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)

    async def trends(
        self,
        *,
        days: int = DEFAULT_DAYS,
        now: datetime | None = None,
        timezone: str = "UTC",
        topics: Sequence[str] | None = None,
        top: int = TOP,
    ) -> Trends:
        """Events per topic per day over the last ``days`` days (today included), with each
        topic's ``top`` outlets and names (see ``bot/trends/entities.py``)."""
        now = now or datetime.now(UTC)
        first, since, until = window(now, days, timezone)
        async with self.sessions() as session:
            events = await topic_events(session, since, until, topics)
            outlets = await self._outlets(session, since, until, topics, top)
            entities = await self._entities(session, since, until, topics, top)
        daily = bucket_events(events, first_day=first, buckets=days, timezone=timezone, topics=topics)
        return Trends(
            first_day=first,
            last_day=first + timedelta(days=days - 1),
            timezone=timezone,
            daily=daily,
            outlets={t: outlets.get(t, []) for t in daily.topics},
            entities={t: entities.get(t, []) for t in daily.topics},
        )

    async def daily(
        self,
        *,
        days: int = DEFAULT_DAYS,
        now: datetime | None = None,
        timezone: str = "UTC",
        topics: Sequence[str] | None = None,
    ) -> TopicSeries:
        """Only the events per topic per day of ``trends`` (what its chart draws): no outlets,
        no names, so no story text is read."""
        now = now or datetime.now(UTC)
        first, since, until = window(now, days, timezone)
        async with self.sessions() as session:
            events = await topic_events(session, since, until, topics)
        return bucket_events(events, first_day=first, buckets=days, timezone=timezone, topics=topics)

    async def weekly(
        self,
        *,
        weeks: int = DEFAULT_WEEKS,
        now: datetime | None = None,
        timezone: str = "UTC",
        topics: Sequence[str] | None = None,
    ) -> TopicSeries:
        """The weekly digest's chart series: events per topic per week."""
        now = now or datetime.now(UTC)
        _first, since, until = window(now, weeks * 7, timezone)
        async with self.sessions() as session:
            events = await topic_events(session, since, until, topics)
        return weekly_series(events, now, weeks=weeks, timezone=timezone, topics=topics)

    @staticmethod
    async def _outlets(
        session: AsyncSession, since: datetime, until: datetime, topics: Sequence[str] | None, top: int
    ) -> dict[str, list[tuple[str, int]]]:
        """Per topic, the outlets by the number of its events they covered."""
        s, c = m.Story, m.Classification
        rows = await session.execute(
            select(c.topic, s.outlet, func.count(distinct(s.cluster_id)))
            .join(c, c.story_id == s.id)
            .where(*_passed_in(since, until, topics))
            .group_by(c.topic, s.outlet)
        )
        found: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for topic, outlet, n in rows:
            found[str(topic)].append((str(outlet), int(n)))
        return {t: sorted(v, key=lambda r: (-r[1], r[0]))[:top] for t, v in found.items()}

    @staticmethod
    async def _entities(
        session: AsyncSession, since: datetime, until: datetime, topics: Sequence[str] | None, top: int
    ) -> dict[str, list[tuple[str, int]]]:
        """Per topic, the names its events' headlines carry, by the number of events."""
        s, c = m.Story, m.Classification
        rows = await session.execute(
            select(s.id, c.topic, s.cluster_id, s.title, func.substr(s.summary, 1, SUMMARY_CHARS))
            .join(c, c.story_id == s.id)
            .where(*_passed_in(since, until, topics))
        )
        evidence = CaseEvidence()
        seen: set[int] = set()
        titles: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        for story_id, topic, cluster_id, title, summary in rows:
            if story_id not in seen:  # a story with two topics is one piece of case evidence
                seen.add(story_id)
                evidence.add_story(str(title), str(summary or ""))
            titles[str(topic)][int(cluster_id)].append(str(title))
        return {
            topic: count_entities(by_cluster.items(), evidence, top) for topic, by_cluster in titles.items()
        }
