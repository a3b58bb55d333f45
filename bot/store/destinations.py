"""Channels' rules as stored: subscriptions, keywords and mention rules, read for many channels at
once. Routing (every channel, cached) and digest planning (a hundred claimed channels) both read
them here, as plain rows; each builds its own rule objects from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import false, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m

__all__ = [
    "ROUTING_LOCK_KEY",
    "ChannelRuleRows",
    "MentionRuleRow",
    "channel_rules",
    "lock_routing",
    "routable_destinations",
    "routing_version",
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
