"""What the web console's pages read (bot/console): sources with their state, stories with their
topics and deliveries, channels with their settings. Reads only; the console's actions use the
same store methods as the command line (``Store.pause_source``, ``resume_source``, ``poll_now``).

Every page is a handful of queries whatever the number of rows: counts, classifications, outlets
and deliveries are read for the whole page at once, never per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.store import models as m
from bot.store.db import session_factory
from bot.store.repo import ChannelPause, Store, cluster_outlets, utcnow
from bot.store.search import RANKED_CANDIDATES, SearchQuery, search_stories

SourceState = Literal["healthy", "backing off", "broken", "paused", "disabled", "new"]
RECENT_STORIES = timedelta(days=7)  # "stories in the last 7 days" on the sources page


def source_state(row: m.Source, now: datetime, broken_after: timedelta, channel_paused: bool) -> SourceState:
    """One word for a source's health, as the sources page shows it.

    "broken" is what the broken-source notices call broken (bot/delivery/notices.py): failing with
    no success for ``broken_after`` (``FW_SOURCE_NOTICE_AFTER_HOURS``); a failing source before
    that is "backing off" (its next poll waits longer after each failure)."""
    if not row.enabled:
        return "disabled"
    if row.paused_at is not None or channel_paused:
        return "paused"
    if row.last_polled_at is None:
        return "new"
    if row.failure_count > 0:
        last_good = row.last_success_at or row.created_at
        return "broken" if last_good <= now - broken_after else "backing off"
    return "healthy"


@dataclass(frozen=True, slots=True)
class SourceOverview:
    id: int
    name: str
    kind: str
    where: str  # the feed URL, or the tracked org / repository
    origin: str  # config | channel
    official: bool
    state: SourceState
    paused_at: datetime | None
    paused_by: str | None
    channel_pauses: tuple[ChannelPause, ...]  # every channel that added it paused it
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    failure_count: int
    last_error: str | None
    next_poll_at: datetime
    polling_now: bool  # a poller holds its lease
    stories_recent: int  # stories seen in it in the last RECENT_STORIES


@dataclass(frozen=True, slots=True)
class StoryFilter:
    topic: str | None = None
    official: bool | None = None
    since: date | None = None  # first day shown (UTC), by publication date
    until: date | None = None  # last day shown (UTC), inclusive
    search: SearchQuery | None = None  # search words (bot/store/search.py)


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    score: float
    passed: bool
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoryDelivery:
    channel: str  # "discord #news"
    kind: str  # alert | digest | followup
    status: str  # pending | sending | sent | failed | dropped | deferred
    at: datetime  # sent, or queued when not sent
    error: str | None


@dataclass(frozen=True, slots=True)
class StoryOverview:
    id: int
    cluster_id: int
    title: str
    url: str
    outlet: str
    official: bool
    published_at: datetime
    first_seen_at: datetime
    topics: tuple[TopicScore, ...]  # passed first, then by score
    outlets: tuple[str, ...]  # the cluster's outlets, first to report first
    deliveries: tuple[StoryDelivery, ...]


@dataclass(frozen=True, slots=True)
class StoryPage:
    stories: list[StoryOverview]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    topic: str
    mode: str
    min_score: float


@dataclass(slots=True)
class ChannelOverview:
    id: int
    platform: str
    workspace_id: str
    channel_id: str
    name: str
    timezone: str
    digest_time: str
    digest_frequency: str
    digest_weekday: str
    next_digest_at: datetime | None
    last_digest_at: datetime | None
    alert_cap_per_hour: int
    active: bool
    inactive_reason: str | None
    paused_at: datetime | None
    paused_by: str | None
    subscriptions: list[SubscriptionView] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    last_error: str | None = None
    last_error_at: datetime | None = None
    pending: int = 0  # outbox rows still to send

    @property
    def label(self) -> str:
        return f"{self.platform} #{self.name or self.channel_id}"


class ConsoleStore:
    """The console's reads; one instance per web application."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    # ------------------------------------------------------------------ sources
    async def sources(self, broken_after: timedelta, now: datetime | None = None) -> list[SourceOverview]:
        now = now or utcnow()
        pauses = await Store(self.engine).channel_pauses()
        async with self.sessions() as session:
            rows = (await session.scalars(select(m.Source).order_by(m.Source.name, m.Source.id))).all()
            recent = dict(
                (
                    await session.execute(
                        select(m.SourceEntry.source_id, func.count())
                        .where(m.SourceEntry.seen_at >= now - RECENT_STORIES)
                        .group_by(m.SourceEntry.source_id)
                    )
                ).all()
            )
        return [
            SourceOverview(
                id=row.id,
                name=row.name,
                kind=row.kind,
                where=row.url or row.org or row.repo or "",
                origin=row.origin,
                official=row.official,
                state=source_state(row, now, broken_after, row.id in pauses),
                paused_at=row.paused_at,
                paused_by=row.paused_by,
                channel_pauses=tuple(pauses.get(row.id, ())),
                last_polled_at=row.last_polled_at,
                last_success_at=row.last_success_at,
                last_status=row.last_status,
                failure_count=row.failure_count,
                last_error=row.last_error,
                next_poll_at=row.next_poll_at,
                polling_now=row.lease_until is not None and row.lease_until > now,
                stories_recent=int(recent.get(row.id, 0)),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ stories
    async def stories(self, wanted: StoryFilter, *, page: int = 1, per_page: int = 25) -> StoryPage:
        """One page of stories, newest first (or best first for search words)."""
        page = max(1, page)
        async with self.sessions() as session:
            if wanted.search is not None and not wanted.search.empty:
                ranked = await search_stories(session, wanted.search, RANKED_CANDIDATES)
                kept = set(
                    (
                        await session.scalars(
                            _filtered(select(m.Story.id), wanted).where(m.Story.id.in_(ranked))
                        )
                    )
                    if ranked
                    else ()
                )
                ids = [i for i in ranked if i in kept]
                total = len(ids)
                chosen = ids[(page - 1) * per_page : page * per_page]
                by_id = {
                    s.id: s for s in await session.scalars(select(m.Story).where(m.Story.id.in_(chosen)))
                }
                stories = [by_id[i] for i in chosen if i in by_id]
            else:
                total = int(
                    await session.scalar(_filtered(select(func.count()).select_from(m.Story), wanted)) or 0
                )
                query = (
                    _filtered(select(m.Story), wanted)
                    .order_by(m.Story.published_at.desc(), m.Story.id.desc())
                    .offset((page - 1) * per_page)
                    .limit(per_page)
                )
                stories = list((await session.scalars(query)).all())
            return StoryPage(await _story_overviews(session, stories), total, page, per_page)

    # ------------------------------------------------------------------ channels
    async def channels(self) -> list[ChannelOverview]:
        async with self.sessions() as session:
            dests = (
                await session.scalars(
                    select(m.Destination).order_by(
                        m.Destination.platform, m.Destination.name, m.Destination.id
                    )
                )
            ).all()
            out = {d.id: _channel(d) for d in dests}
            for sub in await session.scalars(select(m.Subscription).order_by(m.Subscription.topic)):
                if sub.destination_id in out:
                    out[sub.destination_id].subscriptions.append(
                        SubscriptionView(sub.topic, sub.mode, sub.min_score)
                    )
            for kw in await session.scalars(select(m.ChannelKeyword).order_by(m.ChannelKeyword.keyword)):
                if kw.destination_id in out:
                    (
                        out[kw.destination_id].include
                        if kw.kind == "include"
                        else out[kw.destination_id].exclude
                    ).append(kw.keyword)
            latest_error = (
                select(m.Delivery.destination_id, func.max(m.Delivery.id).label("id"))
                .where(m.Delivery.error.is_not(None))
                .group_by(m.Delivery.destination_id)
                .subquery()
            )
            errors = await session.execute(
                select(
                    m.Delivery.destination_id, m.Delivery.error, m.Delivery.created_at, m.Delivery.sent_at
                ).join(latest_error, latest_error.c.id == m.Delivery.id)
            )
            for dest_id, error, created, sent in errors:
                if dest_id in out:
                    out[dest_id].last_error, out[dest_id].last_error_at = error, sent or created
            pending = await session.execute(
                select(m.Delivery.destination_id, func.count())
                .where(m.Delivery.status.in_(m.OPEN_DELIVERY_STATES))
                .group_by(m.Delivery.destination_id)
            )
            for dest_id, count in pending:
                if dest_id in out:
                    out[dest_id].pending = int(count)
            return list(out.values())

    async def channel(self, destination_id: int) -> ChannelOverview | None:
        return next((c for c in await self.channels() if c.id == destination_id), None)


def _channel(d: m.Destination) -> ChannelOverview:
    return ChannelOverview(
        id=d.id,
        platform=d.platform,
        workspace_id=d.workspace_id,
        channel_id=d.channel_id,
        name=d.name,
        timezone=d.timezone,
        digest_time=d.digest_time,
        digest_frequency=d.digest_frequency,
        digest_weekday=d.digest_weekday,
        next_digest_at=d.next_digest_at,
        last_digest_at=d.last_digest_at,
        alert_cap_per_hour=d.alert_cap_per_hour,
        active=d.active,
        inactive_reason=d.inactive_reason,
        paused_at=d.paused_at,
        paused_by=d.paused_by,
    )


def _filtered(query: Select[Any], wanted: StoryFilter) -> Select[Any]:
    if wanted.topic is not None:
        c = m.Classification
        query = query.where(
            m.Story.id.in_(select(c.story_id).where(c.topic == wanted.topic, c.passed.is_(True)))
        )
    if wanted.official is not None:
        query = query.where(m.Story.official.is_(wanted.official))
    if wanted.since is not None:
        query = query.where(m.Story.published_at >= _day_start(wanted.since))
    if wanted.until is not None:
        query = query.where(m.Story.published_at < _day_start(wanted.until) + timedelta(days=1))
    return query


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def _story_overviews(session: AsyncSession, stories: Sequence[m.Story]) -> list[StoryOverview]:
    if not stories:
        return []
    ids = [s.id for s in stories]
    topics: dict[int, list[TopicScore]] = {i: [] for i in ids}
    rows = await session.execute(
        select(
            m.Classification.story_id,
            m.Classification.topic,
            m.Classification.score,
            m.Classification.passed,
            m.Classification.evidence,
        ).where(m.Classification.story_id.in_(ids))
    )
    for story_id, topic, score, passed, evidence in rows:
        terms = tuple(str(t) for t in (evidence or {}).get("terms", []))
        topics[story_id].append(TopicScore(topic, float(score), bool(passed), terms))
    cluster_ids = sorted({s.cluster_id for s in stories})
    outlets = await cluster_outlets(session, cluster_ids)
    sent: dict[int, list[StoryDelivery]] = {c: [] for c in cluster_ids}
    rows = await session.execute(
        select(
            m.Delivery.cluster_id,
            m.Delivery.kind,
            m.Delivery.status,
            m.Delivery.created_at,
            m.Delivery.sent_at,
            m.Delivery.error,
            m.Destination.platform,
            m.Destination.name,
            m.Destination.channel_id,
        )
        .join(m.Destination, m.Destination.id == m.Delivery.destination_id)
        .where(m.Delivery.cluster_id.in_(cluster_ids))
        .order_by(m.Delivery.created_at, m.Delivery.id)
    )
    for cluster_id, kind, status, created, sent_at, error, platform, name, channel_id in rows:
        sent[cluster_id].append(
            StoryDelivery(f"{platform} #{name or channel_id}", kind, status, sent_at or created, error)
        )
    return [
        StoryOverview(
            id=s.id,
            cluster_id=s.cluster_id,
            title=s.title,
            url=s.url,
            outlet=s.outlet,
            official=s.official,
            published_at=s.published_at,
            first_seen_at=s.first_seen_at,
            topics=tuple(sorted(topics[s.id], key=lambda t: (not t.passed, -t.score, t.topic))),
            outlets=tuple(outlets.get(s.cluster_id) or [s.outlet]),
            deliveries=tuple(sent[s.cluster_id]),
        )
        for s in stories
    ]
