"""Seed a migrated database with stories, clusters, destinations and subscriptions directly.

For tests of the parts after ingest (routing, digests, delivery) that should not depend on feeds:
``add_story`` writes the same rows the ingestor writes and returns the ``NewStory`` a sink gets.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.domain import Classification
from bot.pipeline.ingest import NewStory
from bot.store import models as m
from bot.store.db import create_engine, migrate
from bot.store.repo import Store

_urls = itertools.count(1)


async def open_store(url: str) -> Store:
    engine = create_engine(url)
    await migrate(engine)
    return Store(engine)


async def source(store: Store, name: str, *, weight: float = 1.0, **fields: Any) -> int:
    now = datetime.now(UTC)
    async with store.sessions.begin() as session:
        row = await session.scalar(select(m.Source).where(m.Source.name == name))
        if row is not None:
            return row.id
        row = m.Source(
            key=f"feed:https://{name.lower().replace(' ', '')}.example/feed",
            name=name,
            kind="feed",
            url=f"https://{name.lower().replace(' ', '')}.example/feed",
            interval_minutes=30,
            weight=weight,
            enabled=True,
            origin=fields.pop("origin", "config"),
            next_poll_at=fields.pop("next_poll_at", now + timedelta(hours=1)),
            failure_count=0,
            backlog_done=True,
            created_at=fields.pop("created_at", now),
            **fields,
        )
        session.add(row)
        await session.flush()
        return row.id


async def add_story(
    store: Store,
    title: str,
    *,
    topics: dict[str, float] | None = None,
    outlet: str = "Reuters",
    summary: str = "",
    url: str | None = None,
    cluster_id: int | None = None,
    published: datetime | None = None,
    first_seen: datetime | None = None,
    backlog: bool = False,
    threshold: float = 0.5,
    evidence: dict[str, list[str]] | None = None,
    weight: float = 1.0,
    official: bool = False,
) -> NewStory:
    """A stored story (joining ``cluster_id`` when given), classified with ``topics`` scores;
    ``official``: from an official source (the outlet's source row is created official)."""
    topics = {"natsec": 0.8} if topics is None else topics
    now = datetime.now(UTC)
    first_seen = first_seen or now
    published = published or first_seen - timedelta(minutes=30)
    url = url or f"https://news.example/{next(_urls)}"
    source_id = await source(store, outlet, weight=weight, official=official)
    evidence = evidence or {t: [f"{t}-term"] for t in topics}
    async with store.sessions.begin() as session:
        joined = cluster_id is not None
        if cluster_id is None:
            cluster = m.Cluster(first_seen_at=first_seen, last_seen_at=first_seen, sources_count=1)
            session.add(cluster)
            await session.flush()
            cluster_id = cluster.id
        story = m.Story(
            url_hash=f"{next(_urls):040d}",
            url=url,
            title=title,
            summary=summary,
            outlet=outlet,
            source_id=source_id,
            cluster_id=cluster_id,
            published_at=published,
            first_seen_at=first_seen,
            backlog=backlog,
            official=official,
            extra={},
        )
        session.add(story)
        await session.flush()
        if not joined:
            cluster_row = await session.get(m.Cluster, cluster_id)
            assert cluster_row is not None
            cluster_row.representative_story_id = story.id
        session.add(
            m.SourceEntry(
                source_id=source_id,
                guid_hash=story.url_hash,
                outlet=outlet,
                story_id=story.id,
                seen_at=first_seen,
            )
        )
        for topic, score in topics.items():
            session.add(
                m.Classification(
                    story_id=story.id,
                    topic=topic,
                    score=score,
                    passed=score >= threshold,
                    evidence={"terms": evidence.get(topic, [])},
                )
            )
    classification = Classification(
        scores=dict(topics),
        topics=tuple(t for t, s in topics.items() if s >= threshold),
        evidence={t: tuple(v) for t, v in evidence.items()},
    )
    return NewStory(
        story_id=story.id,
        cluster_id=cluster_id,
        title=title,
        url=url,
        summary=summary,
        outlet=outlet,
        published_at=published,
        classification=classification,
        joined_cluster=joined,
        announce=not backlog,
        official=official,
    )


async def add_destination(
    store: Store,
    platform: str,
    channel_id: str,
    subscriptions: Iterable[tuple[str, str, float]] = (("natsec", "both", 0.0),),
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    **fields: Any,
) -> int:
    """A destination with (topic, mode, min_score) subscriptions and optional keywords."""
    now = datetime.now(UTC)
    async with store.sessions.begin() as session:
        dest = m.Destination(
            platform=platform,
            workspace_id=fields.pop("workspace_id", "W1"),
            channel_id=channel_id,
            name=fields.pop("name", channel_id),
            timezone=fields.pop("timezone", "UTC"),
            digest_time=fields.pop("digest_time", "08:00"),
            digest_frequency=fields.pop("digest_frequency", "daily"),
            digest_weekday=fields.pop("digest_weekday", "mon"),
            alert_cap_per_hour=fields.pop("alert_cap_per_hour", 5),
            quiet_day_notice=fields.pop("quiet_day_notice", False),
            repeat_alerted_in_digest=fields.pop("repeat_alerted_in_digest", False),
            active=fields.pop("active", True),
            created_at=now,
            **fields,
        )
        session.add(dest)
        await session.flush()
        for topic, mode, min_score in subscriptions:
            session.add(
                m.Subscription(
                    destination_id=dest.id, topic=topic, mode=mode, min_score=min_score, created_at=now
                )
            )
        for word in include:
            session.add(m.ChannelKeyword(destination_id=dest.id, kind="include", keyword=word))
        for word in exclude:
            session.add(m.ChannelKeyword(destination_id=dest.id, kind="exclude", keyword=word))
        return dest.id


async def deliveries(store: Store, **where: Any) -> list[m.Delivery]:
    async with store.sessions() as session:
        stmt = select(m.Delivery).order_by(m.Delivery.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(m.Delivery, key) == value)
        return list((await session.scalars(stmt)).all())


async def destination(store: Store, dest_id: int) -> m.Destination:
    async with store.sessions() as session:
        row = await session.get(m.Destination, dest_id)
        assert row is not None
        return row


def build_delivery(store: Store, topics: Iterable[str], **settings: Any) -> Any:
    """A Delivery on ``store`` with fast test timings; ``settings`` are Settings fields (tokens, bases)."""
    from bot.delivery.services import Delivery, build_senders
    from bot.settings import Settings

    values: dict[str, Any] = {
        "database_url": "sqlite+aiosqlite:///unused",
        "delivery_max_backoff_seconds": 0.5,
        "delivery_tick_seconds": 0.1,
        "discord_send_rate": 200.0,
    }
    values.update(settings)
    config = Settings(**values)
    return Delivery.build(store, config, tuple(topics), senders=build_senders(config, engine=store.engine))
