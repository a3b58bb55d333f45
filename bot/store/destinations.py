"""Channels as stored: their rules (subscriptions, keywords and mention rules, read for many
channels at once), the routing lock and version, and their digest schedules (claimed with a
lease). Routing (every channel, cached) and digest planning (a hundred claimed channels) both read
the rules here, as plain rows; each builds its own rule objects from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import false, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m

__all__ = [
    "ROUTING_LOCK_KEY",
    "ChannelRuleRows",
    "MentionRuleRow",
    "channel_rules",
    "claim_due_digests",
    "console_destination",
    "destination_row",
    "destinations_by_id",
    "lock_routing",
    "routable_destinations",
    "routing_version",
    "unscheduled_digests",
    "watched_channel_sources",
]


@dataclass(frozen=True, slots=True)
class MentionRuleRow:
    target_kind: str
    target_id: str
    topic: str  # "" = any of the alert's topics
    official: bool
    min_score: float  # 0 = no minimum of its own


@dataclass(slots=True)
class ChannelRuleRows:
    subscriptions: list[tuple[str, str, float]] = field(default_factory=list)  # topic, mode, min score
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    mentions: list[MentionRuleRow] = field(default_factory=list)  # in creation order


async def routable_destinations(session: AsyncSession) -> list[m.Destination]:
    """Channels that may receive something now: active, not paused."""
    query = select(m.Destination).where(m.Destination.active.is_(True), m.Destination.paused_at.is_(None))
    return list((await session.scalars(query)).all())


async def channel_rules(
    session: AsyncSession, destination_ids: Sequence[int], *, mentions: bool = False
) -> dict[int, ChannelRuleRows]:
    """Each channel's subscriptions and keywords (and, with ``mentions``, its mention rules), in
    one query per table whatever the number of channels."""
    rules = {d: ChannelRuleRows() for d in destination_ids}
    if not rules:
        return rules
    ids = list(rules)
    for sub in await session.scalars(select(m.Subscription).where(m.Subscription.destination_id.in_(ids))):
        rules[sub.destination_id].subscriptions.append((sub.topic, sub.mode, sub.min_score))
    for kw in await session.scalars(select(m.ChannelKeyword).where(m.ChannelKeyword.destination_id.in_(ids))):
        target = rules[kw.destination_id]
        (target.include if kw.kind == "include" else target.exclude).append(kw.keyword)
    if mentions:
        query = select(m.MentionRule).where(m.MentionRule.destination_id.in_(ids)).order_by(m.MentionRule.id)
        for rule in await session.scalars(query):
            rules[rule.destination_id].mentions.append(
                MentionRuleRow(rule.target_kind, rule.target_id, rule.topic, rule.official, rule.min_score)
            )
    return rules


ROUTING_LOCK_KEY = 0x46575254  # "FWRT": the PostgreSQL advisory lock that serialises routing


async def routing_version(session: AsyncSession) -> int:
    """The counter the database bumps whenever what routing reads changes (migration 0009)."""
    return int(await session.scalar(select(m.RoutingVersion.version).where(m.RoutingVersion.id == 1)) or 0)


async def lock_routing(session: AsyncSession) -> None:
    """Make this transaction the only routing one, across tasks and replicas, until it ends."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROUTING_LOCK_KEY})
    else:
        # SQLite: a write as the transaction's first statement takes the database's write lock
        # now (waiting out busy_timeout), so the reads that follow see every committed alert.
        await session.execute(update(m.Destination).where(false()).values(id=m.Destination.id))


# ------------------------------------------------------------------ digest schedules
async def destination_row(session: AsyncSession, destination_id: int) -> m.Destination | None:
    return await session.get(m.Destination, destination_id)


async def destinations_by_id(
    session: AsyncSession, ids: Sequence[int], *, lock: bool = False
) -> list[m.Destination]:
    """With ``lock``, the rows stay locked until the transaction ends (PostgreSQL; SQLite
    serializes writers): a pause committed meanwhile is seen, one that comes later waits."""
    query = select(m.Destination).where(m.Destination.id.in_(ids)).order_by(m.Destination.id)
    if lock:
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def unscheduled_digests(session: AsyncSession) -> list[m.Destination]:
    """Channels that want digests but have no next digest time yet (new, or schedule changed)."""
    d = m.Destination
    query = select(d).where(
        d.active.is_(True), d.paused_at.is_(None), d.next_digest_at.is_(None), d.digest_frequency != "off"
    )
    return list((await session.scalars(query)).all())


async def claim_due_digests(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[tuple[int, datetime]]:
    """Lease up to ``limit`` channels whose digest is due, oldest first, in one ``UPDATE … WHERE
    id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` (on SQLite the lock clause is dropped and
    writers are serialized): each is planned by one replica. Returns (id, due time) pairs."""
    d = m.Destination
    due = (
        select(d.id)
        .where(
            d.active.is_(True),
            d.paused_at.is_(None),  # resuming moves the window and the schedule to then
            d.digest_frequency != "off",
            d.next_digest_at <= now,
            or_(d.digest_lease_until.is_(None), d.digest_lease_until < now),
        )
        .order_by(d.next_digest_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(d)
        .where(d.id.in_(due.scalar_subquery()))
        .values(digest_lease_until=lease_until)
        .returning(d.id, d.next_digest_at)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(stmt)).all()
    return sorted(((int(i), at) for i, at in rows if at is not None), key=lambda r: r[1])


# ------------------------------------------------------------------ the console
async def console_destination(
    session: AsyncSession, topics: Sequence[str], *, chat_configured: bool, now: datetime
) -> int | None:
    """The terminal's destination, subscribed to every topic, made or re-enabled when no chat
    platform is in use; switched off (with the reason) when one is (``chat_configured``, or an
    active chat channel in the database). Returns its id, or None when it is off."""
    others = await session.scalar(
        select(m.Destination.id)
        .where(m.Destination.platform != "console", m.Destination.active.is_(True))
        .limit(1)
    )
    chat = chat_configured or others is not None
    console = await session.scalar(
        select(m.Destination).where(
            m.Destination.platform == "console", m.Destination.channel_id == "console"
        )
    )
    if chat:
        if console is not None and console.active:
            console.active = False
            console.inactive_reason = "a chat platform is configured"
        return None
    if console is None:
        console = m.Destination(
            platform="console",
            workspace_id="",
            channel_id="console",
            name="terminal",
            timezone="UTC",
            digest_time="08:00",
            digest_frequency="daily",
            digest_weekday="mon",
            alert_cap_per_hour=5,
            quiet_day_notice=True,
            repeat_alerted_in_digest=False,
            active=True,
            created_at=now,
        )
        session.add(console)
        await session.flush()
    elif not console.active and console.inactive_reason == "a chat platform is configured":
        console.active, console.inactive_reason = True, None
    have = set(
        (
            await session.scalars(
                select(m.Subscription.topic).where(m.Subscription.destination_id == console.id)
            )
        ).all()
    )
    for topic in topics:
        if topic not in have:
            session.add(
                m.Subscription(
                    destination_id=console.id, topic=topic, mode="both", min_score=0.0, created_at=now
                )
            )
    return console.id


async def watched_channel_sources(session: AsyncSession) -> list[tuple[m.ChannelSource, m.Source]]:
    """The feeds channels added, with their sources, for channels that receive posts now (active,
    not paused) and have not paused the feed themselves (then they know it is off)."""
    rows = await session.execute(
        select(m.ChannelSource, m.Source)
        .join(m.Source, m.Source.id == m.ChannelSource.source_id)
        .join(m.Destination, m.Destination.id == m.ChannelSource.destination_id)
        .where(
            m.Destination.active.is_(True),
            m.Destination.paused_at.is_(None),
            m.ChannelSource.paused_at.is_(None),
        )
    )
    return [(link, source) for link, source in rows]
