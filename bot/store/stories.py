"""Stories in the store: what ingest writes (new stories with their clusters, feed entries and
topic scores) and what routing reads about them (founders, official stories, the unrouted).

Ingest decides (classification, clustering) and hands this module plain rows; only here is SQL
written for it. All functions run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m

__all__ = [
    "NewStoryRow",
    "Sighting",
    "StoryCore",
    "TopicScore",
    "UnroutedStory",
    "cluster_founders",
    "mark_official",
    "mark_routed",
    "official_stories",
    "unrouted_stories",
    "write_sightings",
    "write_stories",
]


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    score: float
    passed: bool
    terms: tuple[str, ...] = ()


@dataclass(slots=True)
class NewStoryRow:
    """A story to insert, and the feed entry that brought it.

    Its cluster: ``cluster_id`` when it joins a stored cluster; else ``founder``, the index in the
    same batch of the new story whose new cluster it joins; else (both None) a cluster of its own,
    which takes the story's id."""

    url_hash: str
    url: str
    title: str
    summary: str
    outlet: str
    source_id: int
    guid_hash: str
    published_at: datetime
    backlog: bool
    routed: bool
    official: bool
    extra: dict[str, Any]
    scores: Sequence[TopicScore] = ()
    cluster_id: int | None = None
    founder: int | None = None
    # Filled by write_stories:
    story_id: int = 0
    cluster: int = field(default=0)


@dataclass(frozen=True, slots=True)
class Sighting:
    """A feed entry of a story already stored (another feed, or another outlet, ran it)."""

    source_id: int
    guid_hash: str
    outlet: str
    story_id: int


async def write_stories(session: AsyncSession, rows: Sequence[NewStoryRow], now: datetime) -> None:
    """Insert the stories, their new clusters, their entries and scores; sets each row's
    ``story_id`` and ``cluster``."""
    if not rows:
        return
    # executemany without RETURNING: on SQLite, RETURNING in parameter order costs one round trip
    # per row. A new cluster takes the id of the story that founded it, so stories are written
    # first and their clusters after.
    await session.execute(
        insert(m.Story),
        [
            {
                "url_hash": r.url_hash,
                "url": r.url,
                "title": r.title,
                "summary": r.summary,
                "outlet": r.outlet,
                "source_id": r.source_id,
                "cluster_id": r.cluster_id,
                "published_at": r.published_at,
                "first_seen_at": now,
                "backlog": r.backlog,
                "routed": r.routed,
                "official": r.official,
                "extra": r.extra,
            }
            for r in rows
        ],
    )
    by_url = {r.url_hash: r for r in rows}
    urls = list(by_url)
    for start in range(0, len(urls), 500):
        found = await session.execute(
            select(m.Story.url_hash, m.Story.id).where(m.Story.url_hash.in_(urls[start : start + 500]))
        )
        for url_hash, story_id in found:
            by_url[url_hash].story_id = story_id
    for r in rows:
        r.cluster = _cluster(rows, r)
    founders = [r for r in rows if r.cluster_id is None and r.founder is None]
    if founders:
        await session.execute(
            insert(m.Cluster),
            [
                {
                    "id": r.story_id,
                    "representative_story_id": r.story_id,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "sources_count": 1,
                }
                for r in founders
            ],
        )
    pending = [{"id": r.story_id, "cluster_id": r.cluster} for r in rows if r.cluster_id is None]
    if pending:
        await session.execute(update(m.Story), pending)
    await write_sightings(
        session, [Sighting(r.source_id, r.guid_hash, r.outlet, r.story_id) for r in rows], now
    )
    scores = [
        {
            "story_id": r.story_id,
            "topic": s.topic,
            "score": s.score,
            "passed": s.passed,
            "evidence": {"terms": list(s.terms)},
        }
        for r in rows
        for s in r.scores
    ]
    if scores:
        await session.execute(insert(m.Classification), scores)


def _cluster(rows: Sequence[NewStoryRow], row: NewStoryRow) -> int:
    seen = 0
    while row.cluster_id is None and row.founder is not None:
        row = rows[row.founder]
        seen += 1
        if seen > len(rows):
            raise ValueError("a cycle of founders in a batch of new stories")
    return row.cluster_id if row.cluster_id is not None else row.story_id


async def write_sightings(session: AsyncSession, sightings: Sequence[Sighting], now: datetime) -> None:
    if sightings:
        await session.execute(
            insert(m.SourceEntry),
            [
                {
                    "source_id": s.source_id,
                    "guid_hash": s.guid_hash,
                    "outlet": s.outlet,
                    "story_id": s.story_id,
                    "seen_at": now,
                }
                for s in sightings
            ],
        )


async def mark_official(session: AsyncSession, story_ids: Sequence[int]) -> None:
    """A story first stored from a news feed and now seen in the publisher's own feed (same
    canonical URL) is the publisher's story too."""
    if story_ids:
        await session.execute(
            update(m.Story)
            .where(m.Story.id.in_(story_ids), m.Story.official.is_(False))
            .values(official=True)
            .execution_options(synchronize_session=False)
        )


# ------------------------------------------------------------------ what routing reads and marks
@dataclass(frozen=True, slots=True)
class StoryCore:
    """A stored story's fields as alerts show them."""

    id: int
    title: str
    url: str
    summary: str
    outlet: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class UnroutedStory:
    story: m.Story
    scores: dict[str, float]
    passed: tuple[str, ...]
    evidence: dict[str, tuple[str, ...]]


async def mark_routed(session: AsyncSession, story_ids: Sequence[int]) -> None:
    await session.execute(update(m.Story).where(m.Story.id.in_(story_ids)).values(routed=True))


async def cluster_founders(
    session: AsyncSession, cluster_ids: Sequence[int]
) -> dict[int, tuple[dict[str, Any] | None, datetime]]:
    """Each cluster's founding story: its tracker metadata and when we first saw it."""
    rows = await session.execute(
        select(m.Cluster.id, m.Story.extra, m.Story.first_seen_at)
        .join(m.Story, m.Story.id == m.Cluster.representative_story_id)
        .where(m.Cluster.id.in_(cluster_ids))
    )
    return {cid: (extra, seen) for cid, extra, seen in rows}


async def official_stories(session: AsyncSession, cluster_ids: Sequence[int]) -> dict[int, StoryCore]:
    """Each cluster's earliest official story, for the clusters that have one. ``stories.official``
    is set at ingest, so this is one indexed probe by cluster id, not a join through the sources."""
    s = m.Story
    rows = await session.execute(
        select(s.cluster_id, s.id, s.title, s.url, s.summary, s.outlet, s.published_at)
        .where(s.cluster_id.in_(cluster_ids), s.official.is_(True))
        .order_by(s.first_seen_at, s.id)
    )
    found: dict[int, StoryCore] = {}
    for cid, story_id, title, url, summary, outlet, published_at in rows:
        found.setdefault(cid, StoryCore(story_id, title, url, summary, outlet, published_at))
    return found


async def unrouted_stories(
    session: AsyncSession, since: datetime, limit: int, *, before: datetime | None = None
) -> list[UnroutedStory]:
    """Stored stories the router has not seen (first seen in [since, before]), with their scores."""
    recent = m.Story.first_seen_at <= before if before is not None else true()
    rows = (
        await session.scalars(
            select(m.Story)
            .where(m.Story.routed.is_(False), m.Story.first_seen_at >= since, recent)
            .order_by(m.Story.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return []
    scores: dict[int, dict[str, float]] = {r.id: {} for r in rows}
    passed: dict[int, list[str]] = {r.id: [] for r in rows}
    evidence: dict[int, dict[str, tuple[str, ...]]] = {r.id: {} for r in rows}
    found = await session.scalars(select(m.Classification).where(m.Classification.story_id.in_(list(scores))))
    for c in found:
        scores[c.story_id][c.topic] = c.score
        evidence[c.story_id][c.topic] = tuple((c.evidence or {}).get("terms", []))
        if c.passed:
            passed[c.story_id].append(c.topic)
    return [UnroutedStory(r, scores[r.id], tuple(passed[r.id]), evidence[r.id]) for r in rows]
