"""Routing: each newly stored story is matched against every destination's subscriptions.

A story strong enough for a channel's alert rules becomes an ``alert`` row (or, past the channel's
hourly cap, a ``deferred`` one that the next digest picks up with a note). A story that joins a
cluster the channel was already alerted about becomes coverage for that alert's ``followup`` row:
one reply in the alert's thread, at most one per story per hour, never a new top-level alert.
Digest-only subscriptions need nothing here: digests select from the stored stories when due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.classify.keywords import KeywordFilter
from bot.delivery.bodies import THREADED
from bot.delivery.mentions import MentionRule, mentions_for
from bot.digest.common import Mention
from bot.digest.entries import (
    ALERTED_STATES,
    DigestEntry,
    TopicRule,
    first_seen_line,
    lead_outlet,
    reason_for,
)
from bot.digest.text import short_summary
from bot.domain import Classification
from bot.pipeline.ingest import ANNOUNCE_MAX_AGE, NewStory
from bot.settings import Settings
from bot.store import models as m
from bot.store.destinations import channel_rules, lock_routing, routable_destinations, routing_version
from bot.store.outbox import Outbox, alert_rows, alerts_since, delivery_row
from bot.store.repo import cluster_outlets, utcnow
from bot.store.stories import cluster_founders, mark_routed, official_stories
from bot.store.stories import unrouted_stories as stored_unrouted

log = logging.getLogger(__name__)
RECOVER_GRACE = timedelta(minutes=2)


@dataclass(slots=True)
class Route:
    """A destination's routing rules, loaded once per batch of stories."""

    id: int
    platform: str
    alert_cap: int
    rules: list[TopicRule] = field(default_factory=list)
    keywords: KeywordFilter = field(default_factory=KeywordFilter)
    mentions: list[MentionRule] = field(default_factory=list)  # `/watch alerts mention`, in id order


@dataclass(slots=True)
class RouteTable:
    """Every channel's rules, indexed so a story looks only at the channels it can reach: with
    10,000 channels a story must not cost 10,000 rule checks."""

    version: int
    routes: list[Route]
    by_id: dict[int, Route] = field(default_factory=dict)
    # (topic, word) -> routes whose rule needs the topic to pass (min_score 0), and -> sorted
    # (min_score, route) for rules with their own minimum. The word is one the story must contain
    # for the channel's include keywords to match (KeywordFilter.required_words), or None for a
    # channel any story can reach: with 10,000 channels each following a topic and a keyword, a
    # story then looks at the few channels its words reach, not at every channel of its topic.
    on_pass: dict[tuple[str, str | None], list[Route]] = field(default_factory=dict)
    by_minimum: dict[tuple[str, str | None], list[tuple[float, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {r.id: r for r in self.routes}
        for route in self.routes:
            required = route.keywords.required_words()
            words: list[str | None] = [None] if required is None else [*sorted(required)]
            for rule in route.rules:
                if not rule.alerts:
                    continue
                for word in words:
                    if rule.min_score > 0:
                        self.by_minimum.setdefault((rule.topic, word), []).append((rule.min_score, route.id))
                    else:
                        self.on_pass.setdefault((rule.topic, word), []).append(route)
        for pairs in self.by_minimum.values():
            pairs.sort()

    def candidates(self, c: Classification, alert_min_score: float, words: frozenset[str]) -> list[Route]:
        """The routes one of whose alert rules this classification may satisfy, in id order.
        ``words``: the story's (``KeywordFilter.words_of``)."""
        found: dict[int, Route] = {}
        keys: tuple[str | None, ...] = (None, *words)
        for topic, score in c.scores.items():
            passes = topic in c.topics and score >= alert_min_score
            for word in keys:
                if passes:
                    found.update((r.id, r) for r in self.on_pass.get((topic, word), ()))
                for minimum, route_id in self.by_minimum.get((topic, word), ()):
                    if minimum > score:
                        break
                    found[route_id] = self.by_id[route_id]
        return [found[i] for i in sorted(found)]


async def load_routes(session: AsyncSession) -> list[Route]:
    # A paused channel gets nothing queued (no backlog on resume); the routing_version trigger
    # watches ``paused_at``, so every replica's cached table drops or regains it at once.
    dests = await routable_destinations(session)
    # Mention rules are read with the rest (and cached with them: migration 0011's triggers bump
    # routing_version on any change to mention_rules), so a mention costs no query per alert.
    rows = await channel_rules(session, [d.id for d in dests], mentions=True)
    routes = []
    for d in dests:
        found = rows[d.id]
        if not found.subscriptions:
            continue
        routes.append(
            Route(
                d.id,
                d.platform,
                d.alert_cap_per_hour,
                rules=[TopicRule(*sub) for sub in found.subscriptions],
                keywords=KeywordFilter(found.include, found.exclude),
                mentions=[
                    MentionRule(Mention(r.target_kind, r.target_id), r.topic, r.official, r.min_score)
                    for r in found.mentions
                ],
            )
        )
    return routes


@dataclass(frozen=True, slots=True)
class OfficialStory:
    """A cluster's earliest story from an official source: what its alert shows (see entry_of)."""

    story_id: int
    title: str
    url: str
    summary: str
    outlet: str
    published_at: datetime


def entry_of(
    story: NewStory,
    matched: dict[str, float],
    outlets: Sequence[str],
    founder: tuple[dict[str, Any] | None, datetime] | None = None,
    official: OfficialStory | None = None,
) -> DigestEntry:
    """The alert's snapshot. When the cluster has an official story and ``story`` is not one, the
    official story is what the alert shows (as in digests), with the publisher named first."""
    evidence = {t: list(story.classification.evidence.get(t, ())) for t in matched}
    shown = tuple(outlets) or (story.outlet,)
    lead: NewStory | OfficialStory = story
    if official is not None and not story.official:
        lead = official
        shown = tuple(lead_outlet(shown, official.outlet))
    return DigestEntry(
        cluster_id=story.cluster_id,
        story_id=lead.story_id,
        title=lead.title,
        url=lead.url,
        outlets=shown,
        published_at=lead.published_at,
        topic=max(matched.items(), key=lambda kv: (kv[1], kv[0]))[0],
        topics=matched,
        reason=reason_for(matched, evidence),
        summary=short_summary(lead.summary) if lead.summary else "",
        first_seen=first_seen_line(founder[0], founder[1], len(shown)) if founder else "",
        official=story.official or official is not None,
    )


class Router:
    """The story sink the poller calls after each feed is ingested."""

    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        on_queued: Callable[[], None] | None = None,
        *,
        topics: Sequence[str] = (),
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.on_queued = on_queued
        self.topics = tuple(topics)  # the taxonomy, for the alerts' "Wrong topic…" menu
        self._table: RouteTable | None = None  # re-read only when routing_version moves

    async def __call__(self, stories: Sequence[NewStory]) -> None:
        await self.route(stories)

    def alert_topics(self, route: Route, story: NewStory) -> dict[str, float]:
        c = story.classification
        out = {}
        for rule in route.rules:
            if not rule.alerts or rule.topic not in c.scores:
                continue
            score = c.scores[rule.topic]
            if rule.min_score > 0:
                ok = score >= rule.min_score
            else:  # "strongly relevant": the topic passed and clears the alert floor
                ok = rule.topic in c.topics and score >= self.settings.alert_min_score
            if ok:
                out[rule.topic] = score
        return out

    async def route(self, stories: Sequence[NewStory], now: datetime | None = None) -> int:
        """Queue alerts and follow-ups for ``stories``; returns how many rows changed."""
        now = now or utcnow()
        stories = [s for s in stories if s.announce]
        if not stories:
            return 0
        async with self.outbox.sessions.begin() as session:
            changed = await self._route(session, stories, now)
            # Same transaction as the rows above: a crash before this commit leaves the stories
            # unrouted, and recover() routes them at the next start.
            await mark_routed(session, [s.story_id for s in stories])
        if changed and self.on_queued is not None:
            self.on_queued()
        return changed

    async def recover(self, now: datetime | None = None, limit: int = 2000) -> int:
        """Route stories that were stored but never routed (a crash or a failed sink in between).

        Stories stored in the last two minutes are left to the poller, which is routing them."""
        now = now or utcnow()
        async with self.outbox.sessions() as session:
            stories = await unrouted_stories(
                session, now - ANNOUNCE_MAX_AGE, limit, before=now - RECOVER_GRACE
            )
        if stories:
            log.info("routing %d stories stored before an interruption", len(stories))
        return await self.route(stories, now) if stories else 0

    async def _serialize(self, session: AsyncSession) -> None:
        """One routing transaction at a time, across tasks and replicas.

        The poller routes each feed as it finishes, several at once, and every replica does too;
        the hourly alert cap counts alerts already queued, so concurrent transactions would each
        see room (the demo posted 8 alerts under a cap of 5). Routing is short, so waiting is cheap.
        """
        await lock_routing(session)

    async def _routes(self, session: AsyncSession) -> RouteTable:
        version = await routing_version(session)
        if self._table is None or self._table.version != version:
            self._table = RouteTable(version, await load_routes(session))
        return self._table

    async def _route(self, session: AsyncSession, stories: Sequence[NewStory], now: datetime) -> int:
        changed = 0
        await self._serialize(session)
        table = await self._routes(session)
        if not table.routes:
            return 0
        clusters = sorted({s.cluster_id for s in stories})
        existing = await self._existing(session, clusters)
        outlets = await cluster_outlets(session, clusters)
        founders = await self._founders(session, clusters)
        officials = await self._officials(session, clusters)
        sent_last_hour = await self._recent_alerts(session, now)
        for story in stories:
            # Channels already alerted about this cluster: the story is coverage for a follow-up.
            alerted = sorted(
                dest for (dest, cid, kind) in existing if cid == story.cluster_id and kind == "alert"
            )
            for dest_id in alerted:
                alert = existing[(dest_id, story.cluster_id, "alert")]
                route = table.by_id.get(dest_id)
                if route is not None and story.joined_cluster and alert.status in ALERTED_STATES:
                    changed += await self._followup(session, route, story, alert, existing, outlets, now)
            words = KeywordFilter.words_of(story.title, story.summary)
            for route in table.candidates(story.classification, self.settings.alert_min_score, words):
                if (route.id, story.cluster_id, "alert") in existing:
                    continue
                matched = self.alert_topics(route, story)
                if not matched or (route.keywords and not route.keywords.matches(story.title, story.summary)):
                    continue
                entry = entry_of(
                    story,
                    matched,
                    outlets.get(story.cluster_id, ()),
                    founders.get(story.cluster_id),
                    officials.get(story.cluster_id),
                )
                over = sent_last_hour.get(route.id, 0) >= route.alert_cap
                payload: dict[str, Any] = {
                    "entry": entry.to_dict(),
                    "at": now.isoformat(),
                    # "choices": every topic, for the alert's "Wrong topic…" menu.
                    "choices": list(self.topics or story.classification.scores),
                }
                row: dict[str, Any] = {
                    "destination_id": route.id,
                    "cluster_id": story.cluster_id,
                    "story_id": story.story_id,
                    "kind": "alert",
                    "payload": payload,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                if over:
                    row["status"] = "deferred"
                    row["error"] = f"alert cap {route.alert_cap}/hour reached: moved to the next digest"
                elif route.mentions:
                    # Decided now, kept in the snapshot: a retried send pings whom the first would.
                    mentions = mentions_for(route.mentions, matched, entry.official)
                    if mentions:
                        payload["mentions"] = [t.to_dict() for t in mentions]
                created = await self.outbox.enqueue(session, [row])
                if created:
                    changed += 1
                    if not over:
                        sent_last_hour[route.id] = sent_last_hour.get(route.id, 0) + 1
                    existing[(route.id, story.cluster_id, "alert")] = await delivery_row(session, created[0])
        return changed

    async def _existing(self, session: AsyncSession, clusters: list[int]) -> dict[tuple[int, int, str], Any]:
        return dict(await alert_rows(session, clusters))

    async def _founders(
        self, session: AsyncSession, clusters: list[int]
    ) -> dict[int, tuple[dict[str, Any] | None, datetime]]:
        return await cluster_founders(session, clusters)

    async def _officials(self, session: AsyncSession, clusters: list[int]) -> dict[int, OfficialStory]:
        """Each cluster's earliest official story, for the clusters that have one (a cluster with
        any official member counts as official)."""
        return {
            cid: OfficialStory(s.id, s.title, s.url, s.summary, s.outlet, s.published_at)
            for cid, s in (await official_stories(session, clusters)).items()
        }

    async def _recent_alerts(self, session: AsyncSession, now: datetime) -> dict[int, int]:
        return await alerts_since(session, now - timedelta(hours=1))

    async def _followup(
        self,
        session: AsyncSession,
        route: Route,
        story: NewStory,
        alert: m.Delivery,
        existing: dict[tuple[int, int, str], Any],
        outlets: dict[int, list[str]],
        now: datetime,
    ) -> int:
        if route.platform not in THREADED:
            return 0  # webhooks cannot reply in a thread; a new top-level post would be noise
        item = {"outlet": story.outlet, "title": story.title, "url": story.url}
        total = len(outlets.get(story.cluster_id, ()))
        interval = self.settings.followup_interval_minutes
        row: m.Delivery | None = existing.get((route.id, story.cluster_id, "followup"))
        if row is None:
            fresh: dict[str, Any] = {
                "items": [item],
                "next_items": [],
                "seq": 1,
                "outlets_total": total,
                "alert_title": str((alert.payload or {}).get("entry", {}).get("title", "")),
                "interval_minutes": interval,
            }
            created = await self.outbox.enqueue(
                session,
                [
                    {
                        "destination_id": route.id,
                        "cluster_id": story.cluster_id,
                        "story_id": story.story_id,
                        "kind": "followup",
                        "payload": fresh,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                ],
            )
            if created:
                existing[(route.id, story.cluster_id, "followup")] = await delivery_row(session, created[0])
            return len(created)
        payload: dict[str, Any] = dict(row.payload or {})
        payload["outlets_total"] = max(total, int(payload.get("outlets_total", 0)))
        if row.status == "pending":
            payload["items"] = _merge(payload.get("items", []), item)
        elif row.status == "sending":  # in flight: the next round takes it (see Outbox.mark_sent)
            payload["next_items"] = _merge(payload.get("next_items", []), item)
        elif row.status == "sent":
            last = row.sent_at or now
            payload.update(items=[item], next_items=[], seq=int(payload.get("seq", 1)) + 1)
            row.status, row.attempts, row.platform_message_id, row.error = "pending", 0, None, None
            row.next_attempt_at = max(now, last + timedelta(minutes=interval))
            row.created_at = now
        else:
            return 0
        row.payload = payload
        return 1


async def unrouted_stories(
    session: AsyncSession, since: datetime, limit: int, *, before: datetime | None = None
) -> list[NewStory]:
    """Stored, announceable stories the router has not seen, rebuilt as the poller hands them over."""
    return [
        NewStory(
            story_id=u.story.id,
            cluster_id=u.story.cluster_id,
            title=u.story.title,
            url=u.story.url,
            summary=u.story.summary,
            outlet=u.story.outlet,
            published_at=u.story.published_at,
            classification=Classification(u.scores, u.passed, u.evidence),
            joined_cluster=u.story.cluster_id != u.story.id,  # a cluster's id is its founder's id
            announce=True,
            official=u.story.official,
        )
        for u in await stored_unrouted(session, since, limit, before=before)
    ]


def _merge(items: list[dict[str, str]], item: dict[str, str]) -> list[dict[str, str]]:
    if any(i.get("url") == item["url"] for i in items):
        return list(items)
    return [*items, item]
