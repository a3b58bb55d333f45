"""Queries behind the `/watch` commands: destinations, subscriptions, keywords, channel sources.

Every command that changes something runs in exactly one transaction (``sessions.begin()``), so
a failure anywhere leaves nothing half-saved. Reading commands never create a destination row: a
channel that only ran `/watch status` leaves no trace.

Values cross the session boundary as frozen dataclasses, never as ORM rows, so callers cannot
trigger lazy loads after the session closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.domain import SourceSpec
from bot.sources.config import source_key
from bot.store import models as m
from bot.store.db import retry_start_race, session_factory
from bot.store.destinations import lock_routing
from bot.store.search import SearchQuery, search_stories
from bot.timetable import next_digest_at as _schedule_next

__all__ = [
    "ALERT_CAP_DEFAULT",
    "ALERT_CAP_MAX",
    "FREQUENCIES",
    "MODES",
    "WEEKDAYS",
    "ChannelKey",
    "ChannelState",
    "ChatStore",
    "DestinationView",
    "MentionRuleView",
    "SearchHit",
    "SourcePauseResult",
    "SourceView",
    "SubscriptionView",
    "TooManyMentionRules",
    "TooManySources",
    "WebhookSpec",
    "next_digest_at",
]

MODES = ("alerts", "digest", "both")
FREQUENCIES = ("daily", "weekly", "off")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALERT_CAP_DEFAULT = 5  # alerts per channel per hour until the channel sets its own cap
ALERT_CAP_MAX = 60  # alerts per channel per hour; 0 = no alerts, everything goes to the digest
WEBHOOK_PLATFORMS = ("discord_webhook", "slack_webhook")
_REMOVED_FROM_FILE = "removed from the webhooks file"


def utcnow() -> datetime:
    return datetime.now(UTC)


def next_digest_at(
    digest_time: str, timezone: str, frequency: str, weekday: str, now: datetime
) -> datetime | None:
    """The next digest instant in UTC (None when digests are off).

    Delegates to the delivery side's schedule, so a time set by a command and the time the digest
    clock computes after each digest follow one rule (DST, fall-back nights included).
    """
    return _schedule_next(timezone, digest_time, frequency, weekday, after=now)


class TooManySources(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"this channel already watches {limit} sources, the maximum")
        self.limit = limit


class TooManyMentionRules(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"this channel already has {limit} mention rules, the maximum")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class MentionRuleView:
    """A `/watch alerts mention` rule; ``id`` is what `mention remove` takes."""

    id: int
    target_kind: str  # group | here
    target_id: str
    target_label: str
    topic: str  # "" = any
    official: bool
    min_score: float  # 0 = none

    @classmethod
    def of(cls, row: m.MentionRule) -> MentionRuleView:
        return cls(
            row.id, row.target_kind, row.target_id, row.target_label, row.topic, row.official, row.min_score
        )


@dataclass(frozen=True, slots=True)
class ChannelKey:
    """Where a command ran: platform + workspace (guild/team) + channel."""

    platform: str
    workspace_id: str
    channel_id: str
    name: str = ""

    @property
    def scope(self) -> str:
        """Owner scope stored on sources a channel adds, e.g. ``discord:123:456``."""
        return f"{self.platform}:{self.workspace_id}:{self.channel_id}"


@dataclass(frozen=True, slots=True)
class DestinationView:
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
    active: bool
    inactive_reason: str | None
    alert_cap_per_hour: int
    quiet_day_notice: bool
    repeat_alerted_in_digest: bool
    paused_at: datetime | None = None  # `/watch pause`
    paused_by: str | None = None

    @classmethod
    def of(cls, row: m.Destination) -> DestinationView:
        return cls(
            id=row.id,
            platform=row.platform,
            workspace_id=row.workspace_id,
            channel_id=row.channel_id,
            name=row.name,
            timezone=row.timezone,
            digest_time=row.digest_time,
            digest_frequency=row.digest_frequency,
            digest_weekday=row.digest_weekday,
            next_digest_at=row.next_digest_at,
            last_digest_at=row.last_digest_at,
            active=row.active,
            inactive_reason=row.inactive_reason,
            alert_cap_per_hour=row.alert_cap_per_hour,
            quiet_day_notice=row.quiet_day_notice,
            repeat_alerted_in_digest=row.repeat_alerted_in_digest,
            paused_at=row.paused_at,
            paused_by=row.paused_by,
        )


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    topic: str
    mode: str
    min_score: float


@dataclass(frozen=True, slots=True)
class SourceView:
    id: int
    name: str
    url: str
    enabled: bool
    failure_count: int
    last_error: str | None
    last_success_at: datetime | None
    last_polled_at: datetime | None
    origin: str = "channel"
    paused_at: datetime | None = None  # by the operator, for the whole installation
    paused_by: str | None = None
    paused_here_at: datetime | None = None  # by the channel asking (its own link)
    paused_here_by: str | None = None

    @classmethod
    def of(cls, row: m.Source, link: m.ChannelSource | None = None) -> SourceView:
        return cls(
            id=row.id,
            name=row.name,
            url=row.url or "",
            enabled=row.enabled,
            failure_count=row.failure_count,
            last_error=row.last_error,
            last_success_at=row.last_success_at,
            last_polled_at=row.last_polled_at,
            origin=row.origin,
            paused_at=row.paused_at,
            paused_by=row.paused_by,
            paused_here_at=link.paused_at if link is not None else None,
            paused_here_by=link.paused_by if link is not None else None,
        )


@dataclass(frozen=True, slots=True)
class SourcePauseResult:
    """What `/watch sources pause|resume` did to the channel's link, and what it means for polling."""

    source: SourceView  # as it is now, seen from the channel
    changed: bool  # False: it was already paused (or not paused) here
    others_polling: int  # other channels that added it and have not paused it: it is still polled


@dataclass(frozen=True, slots=True)
class ChannelState:
    destination: DestinationView | None
    subscriptions: tuple[SubscriptionView, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sources: tuple[SourceView, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchHit:
    story_id: int
    title: str
    url: str
    outlet: str
    published_at: datetime
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """One webhook destination from the webhooks file (see ``bot.platforms.webhooks``)."""

    name: str
    platform: str  # discord_webhook | slack_webhook
    url: str
    topics: tuple[SubscriptionView, ...]
    timezone: str = "UTC"
    digest_time: str = "08:00"
    digest_frequency: str = "daily"
    digest_weekday: str = "mon"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = field(default_factory=tuple)


def _reactivate(row: m.Destination) -> None:
    """A successful configuration command resumes posting in a channel the platform had marked
    unreachable: whoever configures it can evidently use it again (the next failure would mark it
    again). A webhook that left the webhooks file stays off; a `/watch pause` stays too."""
    if not row.active and row.inactive_reason != _REMOVED_FROM_FILE:
        row.active, row.inactive_reason = True, None


class ChatStore:
    """Data access for the command handlers and the webhooks file."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    # ------------------------------------------------------------------ destinations
    @staticmethod
    async def _find(session: AsyncSession, key: ChannelKey, *, lock: bool = False) -> m.Destination | None:
        query = select(m.Destination).where(
            m.Destination.platform == key.platform,
            m.Destination.workspace_id == key.workspace_id,
            m.Destination.channel_id == key.channel_id,
        )
        if lock:  # PostgreSQL: commands on one channel run one after another (no-op on SQLite)
            query = query.with_for_update()
        row: m.Destination | None = await session.scalar(query)
        return row

    async def _create(self, key: ChannelKey, now: datetime) -> None:
        """Create the channel's row, if missing, in its own short transaction before the command's
        own: losing a race to a concurrent command on the same new channel is fine (the row exists
        either way), and no connection is held while another is needed."""
        async with self.sessions() as session:
            if await self._find(session, key) is not None:
                return
        row = self._new_row(key, now)
        try:
            async with self.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            pass

    @staticmethod
    def _new_row(key: ChannelKey, now: datetime) -> m.Destination:
        row = m.Destination(
            platform=key.platform,
            workspace_id=key.workspace_id,
            channel_id=key.channel_id,
            name=key.name[:200],
            timezone="UTC",
            digest_time="08:00",
            digest_frequency="daily",
            digest_weekday="mon",
            alert_cap_per_hour=ALERT_CAP_DEFAULT,
            quiet_day_notice=False,
            repeat_alerted_in_digest=False,
            active=True,
            created_at=now,
        )
        row.next_digest_at = next_digest_at("08:00", "UTC", "daily", "mon", now)
        return row

    async def _get_or_create(self, session: AsyncSession, key: ChannelKey, now: datetime) -> m.Destination:
        """The channel's row, created on first use and locked for this command. A configuration
        command also resumes posting in a channel the platform had marked unreachable: whoever
        configures it can evidently use it again (the next failure would pause it again)."""
        row = await self._find(session, key, lock=True)
        if row is None:  # callers create it first (``_create``); the webhook sync creates it here
            row = self._new_row(key, now)
            session.add(row)
            await session.flush()
        elif key.name and row.name != key.name[:200]:
            row.name = key.name[:200]
        _reactivate(row)
        return row

    async def destination(self, key: ChannelKey) -> DestinationView | None:
        async with self.sessions() as session:
            row = await self._find(session, key)
            return DestinationView.of(row) if row is not None else None

    async def channel_state(self, key: ChannelKey) -> ChannelState:
        async with self.sessions() as session:
            row = await self._find(session, key)
            if row is None:
                return ChannelState(destination=None)
            subs = (
                await session.scalars(
                    select(m.Subscription)
                    .where(m.Subscription.destination_id == row.id)
                    .order_by(m.Subscription.topic)
                )
            ).all()
            words = (
                await session.execute(
                    select(m.ChannelKeyword.kind, m.ChannelKeyword.keyword)
                    .where(m.ChannelKeyword.destination_id == row.id)
                    .order_by(m.ChannelKeyword.id)
                )
            ).all()
            sources = (
                await session.execute(
                    select(m.Source, m.ChannelSource)
                    .join(m.ChannelSource, m.ChannelSource.source_id == m.Source.id)
                    .where(m.ChannelSource.destination_id == row.id)
                    .order_by(m.Source.id)
                )
            ).all()
            return ChannelState(
                destination=DestinationView.of(row),
                subscriptions=tuple(SubscriptionView(s.topic, s.mode, s.min_score) for s in subs),
                include=tuple(w for kind, w in words if kind == "include"),
                exclude=tuple(w for kind, w in words if kind == "exclude"),
                sources=tuple(SourceView.of(source, link) for source, link in sources),
            )

    # ------------------------------------------------------------------ subscriptions
    async def subscribe(
        self, key: ChannelKey, topic: str, mode: str, min_score: float, now: datetime | None = None
    ) -> tuple[SubscriptionView, bool]:
        """Subscribe, or change an existing subscription's mode and score. Returns (it, created)."""
        now = now or utcnow()
        await self._create(key, now)
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, now)
            sub = await session.scalar(
                select(m.Subscription).where(
                    m.Subscription.destination_id == dest.id, m.Subscription.topic == topic
                )
            )
            created = sub is None
            if sub is None:
                sub = m.Subscription(destination_id=dest.id, topic=topic, created_at=now)
                session.add(sub)
            sub.mode = mode
            sub.min_score = min_score
            return SubscriptionView(topic, mode, min_score), created

    async def unsubscribe(self, key: ChannelKey, topic: str | None) -> list[str]:
        """Remove one topic (or all when ``topic`` is None); returns the topics removed."""
        async with self.sessions.begin() as session:
            dest = await self._find(session, key, lock=True)
            if dest is None:
                return []
            _reactivate(dest)
            stmt = delete(m.Subscription).where(m.Subscription.destination_id == dest.id)
            if topic is not None:
                stmt = stmt.where(m.Subscription.topic == topic)
            removed = await session.scalars(stmt.returning(m.Subscription.topic))
            return sorted(removed.all())

    # ------------------------------------------------------------------ digest schedule
    async def set_digest_schedule(
        self,
        key: ChannelKey,
        *,
        digest_time: str | None = None,
        timezone: str | None = None,
        frequency: str | None = None,
        weekday: str | None = None,
        now: datetime | None = None,
    ) -> DestinationView:
        """Change the digest time/zone/frequency and recompute ``next_digest_at`` in one go."""
        now = now or utcnow()
        await self._create(key, now)
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, now)
            if digest_time is not None:
                dest.digest_time = digest_time
            if timezone is not None:
                dest.timezone = timezone
            if frequency is not None:
                dest.digest_frequency = frequency
            if weekday is not None:
                dest.digest_weekday = weekday
            dest.next_digest_at = next_digest_at(
                dest.digest_time, dest.timezone, dest.digest_frequency, dest.digest_weekday, now
            )
            await session.flush()
            return DestinationView.of(dest)

    # ------------------------------------------------------------------ delivery options
    async def set_delivery_options(
        self,
        key: ChannelKey,
        *,
        quiet_day_notice: bool | None = None,
        repeat_alerted_in_digest: bool | None = None,
        alert_cap_per_hour: int | None = None,
        now: datetime | None = None,
    ) -> DestinationView:
        """Change the quiet-day notice, repeats in the digest and the hourly alert cap (None = keep).

        Checked before anything is written, so a bad value leaves the channel untouched.
        """
        if alert_cap_per_hour is not None and not 0 <= alert_cap_per_hour <= ALERT_CAP_MAX:
            raise ValueError(f"alert cap must be from 0 to {ALERT_CAP_MAX}, not {alert_cap_per_hour}")
        now = now or utcnow()
        await self._create(key, now)
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, now)
            if quiet_day_notice is not None:
                dest.quiet_day_notice = quiet_day_notice
            if repeat_alerted_in_digest is not None:
                dest.repeat_alerted_in_digest = repeat_alerted_in_digest
            if alert_cap_per_hour is not None:
                dest.alert_cap_per_hour = alert_cap_per_hour
            await session.flush()
            return DestinationView.of(dest)

    # ------------------------------------------------------------------ mention rules
    async def add_mention_rule(
        self,
        key: ChannelKey,
        rule: MentionRuleView,
        *,
        created_by: str,
        limit: int,
        now: datetime | None = None,
    ) -> tuple[MentionRuleView, bool]:
        """Add ``rule`` (its ``id`` is ignored); returns (the stored rule, newly added). The same
        rule twice is one rule. Raises TooManyMentionRules past ``limit``."""
        now = now or utcnow()
        await self._create(key, now)
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, now)
            same = await session.scalar(
                select(m.MentionRule).where(
                    m.MentionRule.destination_id == dest.id,
                    m.MentionRule.target_kind == rule.target_kind,
                    m.MentionRule.target_id == rule.target_id,
                    m.MentionRule.topic == rule.topic,
                    m.MentionRule.official == rule.official,
                    m.MentionRule.min_score == rule.min_score,
                )
            )
            if same is not None:
                return MentionRuleView.of(same), False
            count = await session.scalar(
                select(func.count()).select_from(m.MentionRule).where(m.MentionRule.destination_id == dest.id)
            )
            if int(count or 0) >= limit:
                raise TooManyMentionRules(limit)
            row = m.MentionRule(
                destination_id=dest.id,
                target_kind=rule.target_kind,
                target_id=rule.target_id,
                target_label=rule.target_label[:200],
                topic=rule.topic,
                official=rule.official,
                min_score=rule.min_score,
                created_by=created_by[:200],
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return MentionRuleView.of(row), True

    async def mention_rules(self, key: ChannelKey) -> list[MentionRuleView]:
        async with self.sessions() as session:
            dest = await self._find(session, key)
            if dest is None:
                return []
            rows = await session.scalars(
                select(m.MentionRule)
                .where(m.MentionRule.destination_id == dest.id)
                .order_by(m.MentionRule.id)
            )
            return [MentionRuleView.of(r) for r in rows.all()]

    async def remove_mention_rules(self, key: ChannelKey, ids: Sequence[int] | None) -> list[MentionRuleView]:
        """Remove the channel's rules with these ids (all of them when ``ids`` is None); returns
        those removed. Ids of another channel's rules are never touched."""
        async with self.sessions.begin() as session:
            dest = await self._find(session, key)
            if dest is None:
                return []
            query = select(m.MentionRule).where(m.MentionRule.destination_id == dest.id)
            if ids is not None:
                query = query.where(m.MentionRule.id.in_(list(ids)))
            rows = (await session.scalars(query.order_by(m.MentionRule.id))).all()
            removed = [MentionRuleView.of(r) for r in rows]
            if rows:
                await session.execute(delete(m.MentionRule).where(m.MentionRule.id.in_([r.id for r in rows])))
            return removed

    # ------------------------------------------------------------------ keywords
    async def add_keywords(
        self, key: ChannelKey, words: Sequence[tuple[str, str]], *, limit: int = 50
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Add (kind, keyword) pairs; returns (added, already there). Raises ValueError past ``limit``."""
        await self._create(key, utcnow())
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, utcnow())
            existing = {
                (kind, word.lower()): word
                for kind, word in (
                    await session.execute(
                        select(m.ChannelKeyword.kind, m.ChannelKeyword.keyword).where(
                            m.ChannelKeyword.destination_id == dest.id
                        )
                    )
                ).all()
            }
            added: list[tuple[str, str]] = []
            already: list[tuple[str, str]] = []
            for kind, word in words:
                if (kind, word.lower()) in existing:
                    already.append((kind, word))
                    continue
                existing[(kind, word.lower())] = word
                session.add(m.ChannelKeyword(destination_id=dest.id, kind=kind, keyword=word))
                added.append((kind, word))
            await session.flush()
            # Counted again after our rows are in: a concurrent command on this channel (SQLite
            # serialises writers, PostgreSQL holds the channel row's lock) cannot slip past the cap.
            total = await session.scalar(
                select(func.count())
                .select_from(m.ChannelKeyword)
                .where(m.ChannelKeyword.destination_id == dest.id)
            )
            if len(existing) > limit or (total or 0) > limit:
                # Raising inside the transaction rolls back the whole command.
                count = max(len(existing), total or 0)
                raise ValueError(f"a channel can have at most {limit} keywords ({count} requested)")
            return added, already

    async def remove_keywords(self, key: ChannelKey, words: Sequence[str]) -> tuple[list[str], list[str]]:
        """Remove keywords (include or exclude, case-insensitive); returns (removed, not found)."""
        async with self.sessions.begin() as session:
            dest = await self._find(session, key, lock=True)
            if dest is None:
                return [], list(words)
            _reactivate(dest)
            removed: list[str] = []
            missing: list[str] = []
            for word in words:
                result = await session.scalars(
                    delete(m.ChannelKeyword)
                    .where(
                        m.ChannelKeyword.destination_id == dest.id,
                        func.lower(m.ChannelKeyword.keyword) == word.lower(),
                    )
                    .returning(m.ChannelKeyword.keyword)
                )
                (removed if result.all() else missing).append(word)
            return removed, missing

    # ------------------------------------------------------------------ channel sources
    async def add_channel_source(
        self,
        key: ChannelKey,
        spec: SourceSpec,
        *,
        added_by: str,
        limit: int,
        now: datetime | None = None,
    ) -> tuple[SourceView, bool]:
        """Link a (possibly shared) source to the channel. Returns (source, newly linked).

        The limit is checked inside the same transaction that inserts, so the channel cannot end
        above it even when two commands race on SQLite; PostgreSQL may let two concurrent adds
        both pass, which at worst exceeds the limit by one.
        """
        now = now or utcnow()
        skey = source_key(spec)
        await self._create(key, now)
        async with self.sessions.begin() as session:
            dest = await self._get_or_create(session, key, now)
            source = await session.scalar(select(m.Source).where(m.Source.key == skey))
            if source is not None:
                linked = await session.scalar(
                    select(m.ChannelSource.id).where(
                        m.ChannelSource.destination_id == dest.id, m.ChannelSource.source_id == source.id
                    )
                )
                if linked is not None:
                    return SourceView.of(source), False
            count = await session.scalar(
                select(func.count())
                .select_from(m.ChannelSource)
                .where(m.ChannelSource.destination_id == dest.id)
            )
            if int(count or 0) >= limit:
                raise TooManySources(limit)
            if source is None:
                source = m.Source(
                    key=skey,
                    name=spec.name[:200],
                    kind=spec.kind,
                    url=spec.url,
                    interval_minutes=spec.interval_minutes,
                    weight=spec.weight,
                    enabled=True,
                    origin="channel",
                    owner_scope=key.scope,
                    next_poll_at=now,
                    failure_count=0,
                    backlog_done=False,
                    created_at=now,
                )
                session.add(source)
                await session.flush()
            elif not source.enabled and source.origin == "channel":
                # Another channel removed it earlier; polling resumes now.
                source.enabled = True
                source.next_poll_at = now
                source.failure_count = 0
                source.last_error = None
            session.add(
                m.ChannelSource(
                    destination_id=dest.id, source_id=source.id, added_by=added_by[:200], created_at=now
                )
            )
            await session.flush()
            return SourceView.of(source), True

    async def remove_channel_source(self, key: ChannelKey, source_id: int) -> SourceView | None:
        """Unlink a source from the channel; a channel-added source no channel uses stops polling."""
        async with self.sessions.begin() as session:
            dest = await self._find(session, key, lock=True)
            if dest is None:
                return None
            link = await session.scalar(
                select(m.ChannelSource).where(
                    m.ChannelSource.destination_id == dest.id, m.ChannelSource.source_id == source_id
                )
            )
            if link is None:
                return None
            _reactivate(dest)
            await session.delete(link)
            await session.flush()
            source = await session.get(m.Source, source_id)
            assert source is not None  # the link's foreign key guarantees it
            others = await session.scalar(
                select(func.count())
                .select_from(m.ChannelSource)
                .where(m.ChannelSource.source_id == source_id)
            )
            if not others and source.origin == "channel":
                # Stories keep referencing the row, so it is disabled rather than deleted.
                source.enabled = False
            return SourceView.of(source)

    # ------------------------------------------------------------------ pause and resume
    async def pause_channel(
        self, key: ChannelKey, *, by: str, now: datetime | None = None
    ) -> tuple[DestinationView, bool, int]:
        """`/watch pause`: nothing more is queued here. Returns (channel, newly paused, rows dropped).

        Alerts and follow-ups queued but not yet sent are dropped with the reason, not held:
        resuming must not post a backlog. The router and the digest clock skip a paused channel
        (the routing_version trigger tells every replica's routing cache in the same commit)."""
        now = now or utcnow()
        await self._create(key, now)
        async with self.sessions.begin() as session:
            # After any routing under way (it may be queueing an alert here), before the next: the
            # next one sees the pause (routing_version moves with this commit).
            await lock_routing(session)
            dest = await self._get_or_create(session, key, now)
            if dest.paused_at is not None:
                return DestinationView.of(dest), False, 0
            dest.paused_at, dest.paused_by = now, by[:200]
            # "sending" rows are in a worker's hands; it checks the pause before each unit.
            dropped = await session.scalars(
                update(m.Delivery)
                .where(m.Delivery.destination_id == dest.id, m.Delivery.status == "pending")
                .values(status="dropped", error=f"channel paused by {by}"[:500])
                .returning(m.Delivery.id)
                .execution_options(synchronize_session=False)
            )
            count = len(dropped.all())
            await session.flush()
            return DestinationView.of(dest), True, count

    async def resume_channel(
        self, key: ChannelKey, now: datetime | None = None
    ) -> tuple[DestinationView | None, bool, bool]:
        """`/watch resume`: lift a pause and resume a channel marked unreachable. Returns (channel,
        pause lifted, unreachable mark lifted). The next digest covers only what arrives from now
        on, so resuming never posts what came in while the channel was paused."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            dest = await self._find(session, key, lock=True)
            if dest is None:
                return None, False, False
            was_paused, was_unreachable = dest.paused_at is not None, not dest.active
            _reactivate(dest)
            if was_paused:
                dest.paused_at, dest.paused_by = None, None
                # The digest window starts at the last digest: moved to now, the stories of the
                # pause stay out, and a digest time that passed while paused does not fire at once.
                dest.last_digest_at = now
                dest.next_digest_at = next_digest_at(
                    dest.digest_time, dest.timezone, dest.digest_frequency, dest.digest_weekday, now
                )
            await session.flush()
            return DestinationView.of(dest), was_paused, was_unreachable and dest.active

    async def builtin_source(self, name: str = "", source_id: int | None = None) -> SourceView | None:
        """A source of the sources file (not added by a channel), by id or by name (any case)."""
        wanted = (
            m.Source.id == source_id
            if source_id is not None
            else func.lower(m.Source.name) == name.strip().lower()
        )
        async with self.sessions() as session:
            row = await session.scalar(
                select(m.Source).where(m.Source.origin == "config", wanted).order_by(m.Source.id).limit(1)
            )
            return SourceView.of(row) if row is not None else None

    async def set_channel_source_paused(
        self, key: ChannelKey, source_id: int, *, paused: bool, by: str, now: datetime | None = None
    ) -> SourcePauseResult | None:
        """Pause or resume this channel's link to a source it added (None: it added no such source).

        A channel-added source is polled while any channel that added it has not paused it, so a
        channel cannot stop a feed another channel relies on; when the last one resumes, it is
        due at once. Built-in sources are the operator's (``frontierwatch sources disable``)."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            dest = await self._find(session, key, lock=True)
            if dest is None:
                return None
            link = await session.scalar(
                select(m.ChannelSource)
                .where(m.ChannelSource.destination_id == dest.id, m.ChannelSource.source_id == source_id)
                .with_for_update()
            )
            if link is None:
                return None
            source = await session.get(m.Source, source_id, with_for_update=True)
            assert source is not None  # the link's foreign key guarantees it
            _reactivate(dest)
            changed = (link.paused_at is None) == paused
            if changed and paused:
                link.paused_at, link.paused_by = now, by[:200]
            elif changed:
                link.paused_at, link.paused_by = None, None
                source.next_poll_at = now  # due now; the claim query still skips an operator pause
            others = await session.scalar(
                select(func.count())
                .select_from(m.ChannelSource)
                .where(
                    m.ChannelSource.source_id == source_id,
                    m.ChannelSource.destination_id != dest.id,
                    m.ChannelSource.paused_at.is_(None),
                )
            )
            await session.flush()
            return SourcePauseResult(SourceView.of(source, link), changed, int(others or 0))

    # ------------------------------------------------------------------ search
    async def search(self, query: SearchQuery, limit: int = 10) -> list[SearchHit]:
        """The stories that best match ``query`` (see ``bot.store.search``), best first."""
        async with self.sessions() as session:
            ids = await search_stories(session, query, limit)
            found = {
                s.id: s for s in (await session.scalars(select(m.Story).where(m.Story.id.in_(ids)))).all()
            }
            stories = [found[i] for i in ids if i in found]
            topics: dict[int, list[str]] = {s.id: [] for s in stories}
            if stories:
                rows = await session.execute(
                    select(m.Classification.story_id, m.Classification.topic)
                    .where(m.Classification.story_id.in_(topics), m.Classification.passed.is_(True))
                    .order_by(m.Classification.topic)
                )
                for story_id, topic in rows:
                    topics[story_id].append(topic)
            return [
                SearchHit(s.id, s.title, s.url, s.outlet, s.published_at, tuple(topics[s.id]))
                for s in stories
            ]

    # ------------------------------------------------------------------ webhooks file
    async def sync_webhooks(
        self, specs: Sequence[WebhookSpec], now: datetime | None = None
    ) -> dict[str, int]:
        """Make the webhook destinations match the file, in one transaction.

        Subscriptions and keywords of a webhook are replaced by the file's; webhooks that left the
        file are deactivated (their delivery history stays). A webhook the delivery side marked
        inactive (e.g. revoked) is only reactivated when its URL changes. Replicas may start together.
        """
        return await retry_start_race("webhooks", lambda: self._sync_webhooks(specs, now))

    async def _sync_webhooks(self, specs: Sequence[WebhookSpec], now: datetime | None) -> dict[str, int]:
        now = now or utcnow()
        counts = {"added": 0, "updated": 0, "deactivated": 0}
        async with self.sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(m.Destination).where(m.Destination.platform.in_(WEBHOOK_PLATFORMS))
                )
            ).all()
            existing = {(r.platform, r.channel_id): r for r in rows}
            wanted = {(s.platform, s.name): s for s in specs}
            for ident, spec in wanted.items():
                key = ChannelKey(spec.platform, "", spec.name, spec.name)
                row = existing.get(ident)
                if row is None:
                    row = await self._get_or_create(session, key, now)
                    counts["added"] += 1
                else:
                    counts["updated"] += 1
                    if row.webhook_url != spec.url or row.inactive_reason == _REMOVED_FROM_FILE:
                        row.active, row.inactive_reason = True, None
                row.webhook_url = spec.url
                row.timezone = spec.timezone
                row.digest_time = spec.digest_time
                row.digest_frequency = spec.digest_frequency
                row.digest_weekday = spec.digest_weekday
                row.next_digest_at = next_digest_at(
                    spec.digest_time, spec.timezone, spec.digest_frequency, spec.digest_weekday, now
                )
                await session.execute(delete(m.Subscription).where(m.Subscription.destination_id == row.id))
                await session.execute(
                    delete(m.ChannelKeyword).where(m.ChannelKeyword.destination_id == row.id)
                )
                for sub in spec.topics:
                    session.add(
                        m.Subscription(
                            destination_id=row.id,
                            topic=sub.topic,
                            mode=sub.mode,
                            min_score=sub.min_score,
                            created_at=now,
                        )
                    )
                for kind, words in (("include", spec.include), ("exclude", spec.exclude)):
                    for word in words:
                        session.add(m.ChannelKeyword(destination_id=row.id, kind=kind, keyword=word))
            for ident, row in existing.items():
                if ident not in wanted and row.active:
                    row.active, row.inactive_reason = False, _REMOVED_FROM_FILE
                    counts["deactivated"] += 1
        return counts
