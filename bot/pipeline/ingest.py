"""Turns one source's parsed entries into stored stories: dedup, classify, cluster, store.

Dedup happens at two levels: an entry already seen in this source is skipped (same guid), and
an entry whose canonical URL is already stored becomes another sighting of that story (same
URL across sources). Everything else is a new story: it is classified, placed in a cluster and
written in one transaction per feed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Classification, Entry
from bot.pipeline.cluster import ClusterIndex, IndexedStory, headline_tokens, model_key, raw_tokens
from bot.store import models as m
from bot.store.repo import ClaimedSource, Store, sha1

if TYPE_CHECKING:
    from bot.classify import Classifier

# Older entries are stored but never announced: a feed that surfaces an old post is not news.
ANNOUNCE_MAX_AGE = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story stored by this poll, as handed to sinks (console, chat)."""

    story_id: int
    cluster_id: int
    title: str
    url: str
    summary: str
    outlet: str
    published_at: datetime
    classification: Classification
    joined_cluster: bool  # True when it joined an existing cluster (another outlet's story)
    announce: bool  # False for a source's first-poll backlog and for old entries


@dataclass(slots=True)
class Plan:
    """A new story about to be inserted. ``target``: an existing cluster id, the guid hash of
    the batch story whose new cluster it joins, or None for a cluster of its own."""

    guid_hash: str
    entry: Entry
    url_hash: str
    classification: Classification
    indexed: IndexedStory
    target: int | str | None


@dataclass(frozen=True, slots=True)
class IngestResult:
    seen: int  # entries in the feed
    new_stories: list[NewStory]
    new_sightings: int  # entries of stories already stored from another source


class Ingestor:
    """Serializes writes (one feed at a time) and keeps the cluster index fresh."""

    def __init__(self, store: Store, classifier: Classifier, index: ClusterIndex) -> None:
        self.store = store
        self.classifier = classifier
        self.index = index
        self._lock = asyncio.Lock()

    async def refresh_index(self, now: datetime) -> None:
        rows = await self.store.recent_stories_for_index(self.index.last_story_id, now - self.index.window)
        for story_id, cluster_id, outlet, title, at, extra in rows:
            model = extra.get("model") if extra else None
            self.index.add(
                IndexedStory(
                    story_id=story_id,
                    cluster_id=cluster_id,
                    outlet=outlet,
                    tokens=headline_tokens(title),
                    raw=raw_tokens(title),
                    at=at,
                    model=model_key(model) if isinstance(model, str) else None,
                )
            )
        self.index.prune(now)

    async def ingest(
        self, source: ClaimedSource, entries: list[Entry], now: datetime, *, default_outlet: str
    ) -> IngestResult:
        async with self._lock:
            for attempt in (1, 2):
                try:
                    await self.refresh_index(now)
                    return await self._ingest(source, entries, now, default_outlet)
                except IntegrityError:
                    # Another replica stored the same URL a moment ago; the retry will see it.
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def _ingest(
        self, source: ClaimedSource, entries: list[Entry], now: datetime, default_outlet: str
    ) -> IngestResult:
        by_guid: dict[str, Entry] = {}
        for entry in entries:
            by_guid.setdefault(sha1(entry.guid), entry)
        async with self.store.sessions.begin() as session:
            known = await self.store.known_guids(session, source.id, list(by_guid))
            fresh = {g: e for g, e in by_guid.items() if g not in known}
            if not fresh:
                return IngestResult(len(entries), [], 0)
            url_hashes = {g: sha1(e.url) for g, e in fresh.items()}
            stored = await self.store.stories_by_url(session, list(set(url_hashes.values())))

            sightings: list[dict[str, object]] = []
            touched_clusters: set[int] = set()
            plans: list[Plan] = []
            planned_urls: set[str] = set()
            # Stories of this very batch can cluster with each other (a Google News feed carries
            # several outlets); they get provisional negative ids until the rows exist.
            batch_index = ClusterIndex(window=self.index.window, threshold=self.index.threshold)
            leaders: dict[int, str] = {}
            for guid_hash, entry in fresh.items():
                url_hash = url_hashes[guid_hash]
                outlet = entry.outlet or default_outlet
                if url_hash in stored:
                    story_id, cluster_id = stored[url_hash]
                    sightings.append(_sighting(source.id, guid_hash, outlet, story_id, now))
                    touched_clusters.add(cluster_id)
                    continue
                if url_hash in planned_urls:  # the same URL twice in one feed
                    continue
                planned_urls.add(url_hash)
                classification = self.classifier.classify(entry.title, entry.summary)
                model = dict(entry.extra).get("model")
                indexed = IndexedStory(
                    story_id=0,
                    cluster_id=0,
                    outlet=outlet,
                    tokens=headline_tokens(entry.title),
                    raw=raw_tokens(entry.title),
                    at=entry.published or now,
                    model=model_key(model) if model else None,
                )
                target: int | str | None = None
                match = self.index.find(indexed)
                if match is not None:
                    target = match.cluster_id
                else:
                    local = batch_index.find(indexed)
                    if local is not None:
                        target = leaders[local.cluster_id]
                provisional = -(len(plans) + 1)
                indexed.story_id = provisional
                if isinstance(target, str):
                    indexed.cluster_id = next(k for k, v in leaders.items() if v == target)
                elif target is None:
                    indexed.cluster_id = provisional
                    leaders[provisional] = guid_hash
                else:
                    indexed.cluster_id = target
                batch_index.add(indexed)
                plans.append(Plan(guid_hash, entry, url_hash, classification, indexed, target))

            new_stories: list[NewStory] = []
            if plans:
                new_stories = await self._insert_stories(session, source, plans, now, default_outlet)
                touched_clusters.update(s.cluster_id for s in new_stories if s.joined_cluster)
            if sightings:
                await session.execute(insert(m.SourceEntry), sightings)
            if touched_clusters:
                await self.store.refresh_cluster_counts(session, touched_clusters)
        # Only after the commit: a rolled-back batch must leave no trace in the index.
        for plan in plans:
            self.index.add(plan.indexed)
        return IngestResult(len(entries), new_stories, len(sightings))

    async def _insert_stories(
        self,
        session: AsyncSession,
        source: ClaimedSource,
        plans: list[Plan],
        now: datetime,
        default_outlet: str,
    ) -> list[NewStory]:
        # New clusters first: a story row needs its cluster id.
        needs_cluster = [p for p in plans if p.target is None]
        new_cluster_ids: list[int] = []
        if needs_cluster:
            result = await session.execute(
                insert(m.Cluster).returning(m.Cluster.id, sort_by_parameter_order=True),
                [{"first_seen_at": now, "last_seen_at": now, "sources_count": 1} for _ in needs_cluster],
            )
            new_cluster_ids = [row[0] for row in result]
        cluster_for: dict[str, tuple[int, bool]] = {}
        fresh_ids = iter(new_cluster_ids)
        for plan in plans:
            if plan.target is None:
                cluster_for[plan.guid_hash] = (next(fresh_ids), False)
        for plan in plans:
            if isinstance(plan.target, int):
                cluster_for[plan.guid_hash] = (plan.target, True)
            elif isinstance(plan.target, str):  # joins a cluster created by this batch
                cluster_for[plan.guid_hash] = (cluster_for[plan.target][0], True)

        announce_first_poll = source.backlog_done
        rows = []
        for plan in plans:
            guid_hash, entry, url_hash = plan.guid_hash, plan.entry, plan.url_hash
            published = entry.published or now
            rows.append(
                {
                    "url_hash": url_hash,
                    "url": entry.url,
                    "title": entry.title,
                    "summary": entry.summary,
                    "outlet": entry.outlet or default_outlet,
                    "source_id": source.id,
                    "cluster_id": cluster_for[guid_hash][0],
                    "published_at": published,
                    "first_seen_at": now,
                    "backlog": not announce_first_poll,
                    "extra": dict(entry.extra) if entry.extra else {},
                }
            )
        result = await session.execute(
            insert(m.Story).returning(m.Story.id, sort_by_parameter_order=True), rows
        )
        story_ids = [row[0] for row in result]

        entry_rows, class_rows, reps, out = [], [], [], []
        for story_id, plan, row in zip(story_ids, plans, rows, strict=True):
            guid_hash, entry, classification, indexed = (
                plan.guid_hash,
                plan.entry,
                plan.classification,
                plan.indexed,
            )
            cluster_id, joined = cluster_for[guid_hash]
            entry_rows.append(_sighting(source.id, guid_hash, str(row["outlet"]), story_id, now))
            for topic, score in classification.scores.items():
                if score > 0:
                    class_rows.append(
                        {
                            "story_id": story_id,
                            "topic": topic,
                            "score": score,
                            "passed": topic in classification.topics,
                            "evidence": {"terms": list(classification.evidence.get(topic, ()))},
                        }
                    )
            if not joined:
                reps.append({"id": cluster_id, "representative_story_id": story_id})
            indexed.story_id, indexed.cluster_id = story_id, cluster_id
            published = row["published_at"]
            assert isinstance(published, datetime)
            out.append(
                NewStory(
                    story_id=story_id,
                    cluster_id=cluster_id,
                    title=entry.title,
                    url=entry.url,
                    summary=entry.summary,
                    outlet=str(row["outlet"]),
                    published_at=published,
                    classification=classification,
                    joined_cluster=joined,
                    announce=announce_first_poll and now - published <= ANNOUNCE_MAX_AGE,
                )
            )
        await session.execute(insert(m.SourceEntry), entry_rows)
        if class_rows:
            await session.execute(insert(m.Classification), class_rows)
        if reps:
            await session.execute(update(m.Cluster), reps)
        return out


def _sighting(source_id: int, guid_hash: str, outlet: str, story_id: int, now: datetime) -> dict[str, object]:
    return {
        "source_id": source_id,
        "guid_hash": guid_hash,
        "outlet": outlet,
        "story_id": story_id,
        "seen_at": now,
    }
