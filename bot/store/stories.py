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

from sqlalchemy import and_, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m
from bot.store.db import chunks
from bot.store.repo import cluster_outlets

__all__ = [
    "ClusterFacts",
    "NewStoryRow",
    "Sighting",
    "StoryCore",
    "TopicScore",
    "UnroutedStory",
    "cluster_facts",
    "cluster_founders",
    "mark_official",
    "mark_routed",
    "official_stories",
    "unrouted_stories",
    "window_clusters",
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


# ------------------------------------------------------------------ what digests read
@dataclass(slots=True)
class ClusterFacts:
    """What any channel's digest needs to know about one cluster: loaded once per digest tick and
    shared by every channel planned in it (10,000 channels must not read the same stories 10,000
    times)."""

    members: list[m.Story]
    representative_id: int | None
    scores: dict[str, tuple[float, bool]]  # topic -> (best score, passed by any member)
    evidence: dict[str, list[str]]
    outlets: list[str]
    weight: float

    @property
    def official(self) -> bool:
        """A cluster with any official member counts as official."""
        return any(s.official for s in self.members)


async def window_clusters(session: AsyncSession, since: datetime, until: datetime) -> list[int]:
    """Clusters with a story first seen in (since, until].

    A source's first-poll backlog counts only for what it published inside the period, so the
    first digest after adding a feed is not its whole archive."""
    in_window = and_(
        m.Story.first_seen_at > since,
        m.Story.first_seen_at <= until,
        or_(m.Story.backlog.is_(False), m.Story.published_at > since),
    )
    return list((await session.scalars(select(m.Story.cluster_id).where(in_window).distinct())).all())


async def cluster_facts(session: AsyncSession, cluster_ids: Sequence[int]) -> dict[int, ClusterFacts]:
    """Each cluster's members, best score per topic, evidence, outlets and weight."""
    representatives = dict(
        (
            await session.execute(
                select(m.Cluster.id, m.Cluster.representative_story_id).where(m.Cluster.id.in_(cluster_ids))
            )
        ).all()
    )
    stories = (await session.scalars(select(m.Story).where(m.Story.cluster_id.in_(cluster_ids)))).all()
    by_cluster: dict[int, list[m.Story]] = {}
    for s in stories:
        by_cluster.setdefault(s.cluster_id, []).append(s)
    scores: dict[int, dict[str, tuple[float, bool]]] = {}
    evidence: dict[int, dict[str, list[str]]] = {}
    story_cluster = {s.id: s.cluster_id for s in stories}
    for chunk in chunks([s.id for s in stories], 500):
        rows = await session.execute(
            select(
                m.Classification.story_id,
                m.Classification.topic,
                m.Classification.score,
                m.Classification.passed,
                m.Classification.evidence,
            ).where(m.Classification.story_id.in_(chunk))
        )
        for story_id, topic, score, passed, ev in rows:
            cid = story_cluster[story_id]
            best, any_passed = scores.setdefault(cid, {}).get(topic, (-1.0, False))
            if score > best:
                evidence.setdefault(cid, {})[topic] = list((ev or {}).get("terms", []))
            scores[cid][topic] = (max(best, score), any_passed or bool(passed))
    outlets = await cluster_outlets(session, cluster_ids)
    source_ids = {s.source_id for s in stories}
    weights = dict(
        (await session.execute(select(m.Source.id, m.Source.weight).where(m.Source.id.in_(source_ids)))).all()
    )
    return {
        cid: ClusterFacts(
            members=members,
            representative_id=representatives.get(cid),
            scores=scores.get(cid, {}),
            evidence=evidence.get(cid, {}),
            outlets=outlets.get(cid, []),
            weight=max((weights.get(s.source_id, 1.0) for s in members), default=1.0),
        )
        for cid, members in by_cluster.items()
    }
