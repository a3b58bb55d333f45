"""What goes into a digest: one entry per cluster, selected for a destination and ranked.

Selection reads the stored stories (not the outbox), so a digest never depends on a sink having
run: whatever was ingested in the period is considered. Each entry is a plain, JSON-able snapshot
(``DigestEntry.to_dict``) that the outbox stores with the delivery row, so a digest re-rendered
after a crash is byte-for-byte the digest that was planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.classify.keywords import KeywordFilter
from bot.digest.text import short_summary
from bot.store.db import chunks
from bot.store.outbox import Delivered, delivered
from bot.store.stories import ClusterFacts, cluster_facts, window_clusters

ALERTED_STATES = ("pending", "sending", "sent")


@dataclass(frozen=True, slots=True)
class TopicRule:
    """One subscription as routing sees it: min_score 0 means "the topic's own threshold"."""

    topic: str
    mode: str = "both"
    min_score: float = 0.0

    def accepts(self, score: float, passed: bool) -> bool:
        return score >= self.min_score if self.min_score > 0 else passed

    @property
    def digest(self) -> bool:
        return self.mode in ("digest", "both")

    @property
    def alerts(self) -> bool:
        return self.mode in ("alerts", "both")


@dataclass(frozen=True, slots=True)
class DigestEntry:
    cluster_id: int
    story_id: int
    title: str
    url: str
    outlets: tuple[str, ...]
    published_at: datetime
    topic: str  # the group it is shown under: its strongest subscribed topic
    topics: dict[str, float]  # subscribed topics it matched, with scores
    reason: str  # the one-line "why" from the classifier evidence
    summary: str  # one or two sentences
    weight: float = 1.0  # source weight (ranking)
    overflow: bool = False  # moved here because the channel hit its alert cap
    first_seen: str = ""  # "first seen on the Hugging Face Hub at 09:12 UTC, covered by 4 outlets since"
    official: bool = False  # the cluster has an official source's story, and that is the one shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "story_id": self.story_id,
            "title": self.title,
            "url": self.url,
            "outlets": list(self.outlets),
            "published_at": self.published_at.isoformat(),
            "topic": self.topic,
            "topics": dict(self.topics),
            "reason": self.reason,
            "summary": self.summary,
            "weight": self.weight,
            "overflow": self.overflow,
            "first_seen": self.first_seen,
            "official": self.official,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestEntry:
        return cls(
            cluster_id=int(data["cluster_id"]),
            story_id=int(data["story_id"]),
            title=str(data["title"]),
            url=str(data["url"]),
            outlets=tuple(data.get("outlets") or ()),
            published_at=datetime.fromisoformat(data["published_at"]),
            topic=str(data["topic"]),
            topics={str(k): float(v) for k, v in (data.get("topics") or {}).items()},
            reason=str(data.get("reason") or ""),
            summary=str(data.get("summary") or ""),
            weight=float(data.get("weight", 1.0)),
            overflow=bool(data.get("overflow", False)),
            first_seen=str(data.get("first_seen") or ""),
            # Snapshots queued before official sources existed have no key: not official.
            official=bool(data.get("official", False)),
        )

    @property
    def score(self) -> float:
        return max(self.topics.values(), default=0.0)


def rank_value(entry: DigestEntry, now: datetime) -> float:
    """Higher is better: relevance first, then how widely it is covered, freshness and the
    source's weight (a wire service or regulator outranks an aggregator at equal relevance)."""
    hours = max(0.0, (now - entry.published_at).total_seconds() / 3600)
    return (
        entry.score
        + 0.05 * min(len(entry.outlets), 6)
        - 0.004 * min(hours, 72)
        + 0.1 * max(-1.0, min(entry.weight - 1.0, 1.0))
    )


def rank_key(entry: DigestEntry, now: datetime) -> tuple[bool, float]:
    """Sort key, smaller first: official stories ahead of everything else (a regulator's own rule
    is what a reader of these topics must not miss), then by :func:`rank_value`."""
    return (not entry.official, -rank_value(entry, now))


def arrange(entries: Iterable[DigestEntry], now: datetime, topic_order: Sequence[str]) -> list[DigestEntry]:
    """Group by topic (taxonomy order), rank inside each group; the order a digest shows them in."""
    order = {t: i for i, t in enumerate(topic_order)}
    return sorted(
        entries,
        key=lambda e: (
            order.get(e.topic, len(order)),
            e.topic,
            *rank_key(e, now),
            -e.published_at.timestamp(),
            e.cluster_id,
        ),
    )


@dataclass(slots=True)
class Selection:
    """Inputs of one digest selection."""

    since: datetime
    until: datetime
    rules: list[TopicRule]
    keywords: KeywordFilter = field(default_factory=KeywordFilter)
    destination_id: int | None = None  # None: a preview for no particular channel
    repeat_alerted: bool = False
    limit: int = 500  # clusters; a digest is a summary, and this bounds memory on a huge backlog


TRACKER_PLACES = {"hf_models": "on the Hugging Face Hub", "github_releases": "on GitHub"}


def first_seen_line(founder_extra: dict[str, Any] | None, founder_seen: datetime, outlets: int) -> str:
    """For a release a tracker found before the news: where and when it appeared first, and how
    many outlets have covered it since. Empty for clusters a news outlet started."""
    place = TRACKER_PLACES.get(str((founder_extra or {}).get("tracker", "")))
    if place is None:
        return ""
    line = f"first seen {place} at {founder_seen.astimezone(UTC):%H:%M} UTC"
    others = max(0, outlets - 1)
    if others:
        line += f", covered by {others} outlet{'s' if others != 1 else ''} since"
    return line


def reason_for(topics: dict[str, float], evidence: dict[str, list[str]], max_terms: int = 3) -> str:
    parts = []
    for topic, _score in sorted(topics.items(), key=lambda kv: -kv[1]):
        terms = ", ".join(evidence.get(topic, [])[:max_terms])
        parts.append(f"{topic} ({terms})" if terms else topic)
    return "; ".join(parts)


async def select_entries(
    session: AsyncSession,
    sel: Selection,
    topic_order: Sequence[str],
    cache: dict[int, ClusterFacts] | None = None,
    *,
    window: Sequence[int] | None = None,
    done: Sequence[Delivered] | None = None,
) -> list[DigestEntry]:
    """Clusters with a story first seen in (since, until] that match the rules and keywords.

    ``cache`` (one per digest tick) keeps the clusters' facts for the next channel; ``window``
    (``window_clusters``) and ``done`` (``delivered``) may be read once for many channels.
    """
    cluster_ids = list(window) if window is not None else await window_clusters(session, sel.since, sel.until)
    if not cluster_ids:
        return []
    skip: set[int] = set()
    overflow: set[int] = set()
    if sel.destination_id is not None:
        if done is None:
            done = (await delivered(session, [sel.destination_id], cluster_ids))[sel.destination_id]
        for cluster_id, kind, status in done:
            if kind == "digest":
                skip.add(cluster_id)
            elif status == "deferred":
                overflow.add(cluster_id)
            elif status in ALERTED_STATES and not sel.repeat_alerted:
                skip.add(cluster_id)
        overflow -= skip
    wanted = [c for c in cluster_ids if c not in skip]
    facts = cache if cache is not None else {}
    missing = [c for c in wanted if c not in facts]
    for chunk in chunks(missing, 400):
        facts.update(await cluster_facts(session, chunk))
    entries = []
    for cid in wanted:
        found = facts.get(cid)
        entry = _entry(cid, found, sel, overflow) if found is not None else None
        if entry is not None:
            entries.append(entry)
    now = sel.until
    entries.sort(key=lambda e: rank_key(e, now))  # a digest cut at the limit keeps official stories
    return arrange(entries[: sel.limit], now, topic_order)


def _entry(cid: int, facts: ClusterFacts, sel: Selection, overflow: set[int]) -> DigestEntry | None:
    members = facts.members
    rep = next((s for s in members if s.id == facts.representative_id), None)
    rep = rep or min(members, key=lambda s: (s.first_seen_at, s.id))
    outlets = facts.outlets or [rep.outlet]
    official = [s for s in members if s.official]
    if official and not rep.official:
        # The publisher's own document speaks for the cluster, not the first outlet to report it.
        rep = min(official, key=lambda s: (s.first_seen_at, s.id))
        outlets = lead_outlet(outlets, rep.outlet)
    matched = {
        rule.topic: facts.scores[rule.topic][0]
        for rule in sel.rules
        if (rule.digest or cid in overflow)
        and rule.topic in facts.scores
        and rule.accepts(*facts.scores[rule.topic])
    }
    if not matched:
        return None
    if sel.keywords and not any(sel.keywords.matches(s.title, s.summary) for s in members):
        return None
    main = max(matched.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return DigestEntry(
        cluster_id=cid,
        story_id=rep.id,
        title=rep.title,
        url=rep.url,
        outlets=tuple(outlets),
        published_at=rep.published_at,
        topic=main,
        topics=matched,
        reason=reason_for(matched, facts.evidence),
        summary=short_summary(rep.summary) if rep.summary else "",
        weight=facts.weight,
        overflow=cid in overflow,
        first_seen=first_seen_line(rep.extra, rep.first_seen_at, len(outlets)),
        official=rep.official,
    )


def lead_outlet(outlets: Sequence[str], shown: str) -> list[str]:
    """``outlets`` with the shown story's outlet first: "Federal Register · also: Reuters" must name
    the outlet whose headline and link are shown."""
    return [shown, *(o for o in outlets if o != shown)] if shown in outlets else list(outlets)


def window_start(last: datetime | None, fire: datetime, frequency: str) -> datetime:
    """Since the last digest; the first digest covers one period."""
    period = timedelta(days=7) if frequency == "weekly" else timedelta(days=1)
    return last if last is not None else fire - period
