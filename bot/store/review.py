"""The Review queue (issue 14, item 5): stories worth a person's label, and the labels given.

Two queues:

- **near a threshold**: a topic's stored score is within ``margin`` of the threshold that topic
  is attached at (the classifier's own: the learned model's where it was trained, else the rules'
  from ``topics.toml``; see ``bot.classify.topic_thresholds``). Those are the stories whose label
  teaches the model most, and where a channel most likely got a wrong alert or missed a right one.
- **chat feedback**: stories readers marked "Not relevant" or "Wrong topic" under an alert.

A label (the guide's topics, or none) is stored in ``review_labels``, one per story and console
user (a second label replaces the first), and ``frontierwatch feedback export`` writes it with the
chat feedback in the labelling guide's record format, which ``frontierwatch train --feedback``
reads. Labelled stories leave the queues unless asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.store import models as m
from bot.store.db import session_factory

__all__ = [
    "DEFAULT_MARGIN",
    "LabelError",
    "ReviewItem",
    "ReviewStore",
    "StoredLabel",
    "TopicScore",
]

DEFAULT_MARGIN = 0.1
DEFAULT_DAYS = 30
MAX_USER_CHARS = 200


class LabelError(ValueError):
    """The label cannot be stored (unknown story or topic); the message is for the person."""


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    score: float
    passed: bool
    threshold: float | None  # None: the topic is no longer in the taxonomy
    evidence: tuple[str, ...] = ()  # the terms that scored it, as the classifier stored them


@dataclass(frozen=True, slots=True)
class ChatJudgement:
    kind: str  # not_relevant | wrong_topic
    topics: tuple[str, ...]  # what the reader says instead
    platform: str
    user: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ReviewItem:
    story_id: int
    title: str
    summary: str
    url: str
    outlet: str
    published_at: datetime
    scores: tuple[TopicScore, ...]  # every stored topic score, in the taxonomy's order
    closest: float | None  # the smallest |score - threshold| among them (near-threshold queue)
    feedback: tuple[ChatJudgement, ...]  # readers' clicks, oldest first
    label: tuple[str, ...] | None  # the latest console label, if any
    labelled_by: str | None

    @property
    def passed_topics(self) -> tuple[str, ...]:
        return tuple(s.topic for s in self.scores if s.passed)


@dataclass(frozen=True, slots=True)
class StoredLabel:
    story_id: int
    title: str
    topics: tuple[str, ...]
    replaced: bool  # this user had labelled the story before


class ReviewStore:
    def __init__(self, engine: AsyncEngine, topics: Sequence[str] = ()) -> None:
        self.sessions = session_factory(engine)
        self.topics = tuple(topics)  # the taxonomy's order, for showing scores

    # ------------------------------------------------------------------ queues
    async def near_threshold(
        self,
        thresholds: Mapping[str, float],
        *,
        margin: float = DEFAULT_MARGIN,
        days: int = DEFAULT_DAYS,
        limit: int = 50,
        include_labelled: bool = False,
        now: datetime | None = None,
    ) -> list[ReviewItem]:
        """Stories published in the last ``days`` days with a topic score within ``margin`` of
        that topic's threshold, closest first."""
        if not thresholds:
            return []
        now = now or datetime.now(UTC)
        c, s = m.Classification, m.Story
        threshold_of = case(dict(thresholds), value=c.topic)
        distance = func.abs(c.score - threshold_of)
        near = or_(
            *(
                and_(c.topic == topic, c.score >= t - margin, c.score <= t + margin)
                for topic, t in thresholds.items()
            )
        )
        where = [near, s.published_at >= now - timedelta(days=days)]
        if not include_labelled:
            where.append(not_(exists().where(m.ReviewLabel.story_id == s.id)))
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(c.story_id, distance)
                    .join(s, s.id == c.story_id)
                    .where(*where)
                    .order_by(distance, s.published_at.desc(), c.story_id)
                    .limit(limit * 4)  # a story near two thresholds is two rows
                )
            ).all()
            closest: dict[int, float] = {}
            for story_id, gap in rows:
                closest.setdefault(int(story_id), float(gap))
            chosen = list(closest)[:limit]
            items = await self._items(session, chosen, thresholds)
        return [_with_closest(items[i], closest[i]) for i in chosen if i in items]

    async def with_feedback(
        self,
        thresholds: Mapping[str, float] | None = None,
        *,
        days: int = 90,
        limit: int = 50,
        include_labelled: bool = False,
        now: datetime | None = None,
    ) -> list[ReviewItem]:
        """Stories readers gave feedback on in chat in the last ``days`` days, latest first."""
        now = now or datetime.now(UTC)
        f = m.Feedback
        where = [f.created_at >= now - timedelta(days=days)]
        if not include_labelled:
            where.append(not_(exists().where(m.ReviewLabel.story_id == f.story_id)))
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(f.story_id, func.max(f.created_at).label("latest"))
                    .where(*where)
                    .group_by(f.story_id)
                    .order_by(func.max(f.created_at).desc(), f.story_id)
                    .limit(limit)
                )
            ).all()
            chosen = [int(r[0]) for r in rows]
            items = await self._items(session, chosen, thresholds or {})
        return [items[i] for i in chosen if i in items]

    async def item(self, story_id: int, thresholds: Mapping[str, float] | None = None) -> ReviewItem | None:
        async with self.sessions() as session:
            return (await self._items(session, [story_id], thresholds or {})).get(story_id)

    async def _items(
        self, session: AsyncSession, story_ids: Sequence[int], thresholds: Mapping[str, float]
    ) -> dict[int, ReviewItem]:
        """The stories with their scores, chat feedback and latest console label (four queries)."""
        if not story_ids:
            return {}
        ids = list(story_ids)
        stories = {s.id: s for s in await session.scalars(select(m.Story).where(m.Story.id.in_(ids)))}
        scores: dict[int, list[TopicScore]] = defaultdict(list)
        for cl in await session.scalars(select(m.Classification).where(m.Classification.story_id.in_(ids))):
            terms = tuple(str(t) for t in (cl.evidence or {}).get("terms", []))
            scores[cl.story_id].append(
                TopicScore(cl.topic, float(cl.score), bool(cl.passed), thresholds.get(cl.topic), terms)
            )
        judgements: dict[int, list[ChatJudgement]] = defaultdict(list)
        for fb in await session.scalars(
            select(m.Feedback)
            .where(m.Feedback.story_id.in_(ids))
            .order_by(m.Feedback.created_at, m.Feedback.id)
        ):
            judgements[fb.story_id].append(
                ChatJudgement(fb.kind, tuple(fb.topics), fb.platform, fb.user_id, fb.created_at)
            )
        labels: dict[int, m.ReviewLabel] = {}
        for label in await session.scalars(
            select(m.ReviewLabel)
            .where(m.ReviewLabel.story_id.in_(ids))
            .order_by(m.ReviewLabel.created_at, m.ReviewLabel.id)
        ):
            labels[label.story_id] = label  # the latest wins
        order = {t: i for i, t in enumerate(self.topics)}
        out: dict[int, ReviewItem] = {}
        for story_id, story in stories.items():
            latest = labels.get(story_id)
            out[story_id] = ReviewItem(
                story_id=story_id,
                title=story.title,
                summary=story.summary,
                url=story.url,
                outlet=story.outlet,
                published_at=story.published_at,
                scores=tuple(
                    sorted(scores[story_id], key=lambda sc: (order.get(sc.topic, len(order)), sc.topic))
                ),
                closest=None,
                feedback=tuple(judgements[story_id]),
                label=tuple(latest.topics) if latest is not None else None,
                labelled_by=latest.labelled_by if latest is not None else None,
            )
        return out

    # ------------------------------------------------------------------ labels
    async def store_label(
        self,
        story_id: int,
        topics: Iterable[str],
        *,
        user: str,
        known_topics: Iterable[str],
        now: datetime | None = None,
    ) -> StoredLabel:
        """Store the console user's label for a story: the guide's topics, or none (``[]``, a
        hard negative when it shares words with a topic). Replaces this user's earlier label."""
        chosen = tuple(dict.fromkeys(topics))
        allowed = tuple(known_topics)
        unknown = [t for t in chosen if t not in allowed]
        if unknown:
            raise LabelError(f"unknown topic {unknown[0]!r}; topics are {', '.join(allowed)}")
        who = user.strip()[:MAX_USER_CHARS]
        if not who:
            raise LabelError("a label needs the name of the person who gave it")
        now = now or datetime.now(UTC)
        async with self.sessions.begin() as session:
            story = await session.get(m.Story, story_id)
            if story is None:
                raise LabelError("this story is no longer stored")
            row = await session.scalar(
                select(m.ReviewLabel).where(
                    m.ReviewLabel.story_id == story_id, m.ReviewLabel.labelled_by == who
                )
            )
            replaced = row is not None
            if row is None:
                row = m.ReviewLabel(story_id=story_id, labelled_by=who)
                session.add(row)
            row.topics, row.created_at = list(chosen), now
            return StoredLabel(story_id, story.title, chosen, replaced)

    async def labels_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(m.ReviewLabel)) or 0)


def _with_closest(item: ReviewItem, gap: float) -> ReviewItem:
    from dataclasses import replace

    return replace(item, closest=gap)


async def console_label_records(session: AsyncSession) -> list[tuple[datetime, int, dict[str, Any]]]:
    """Every console label as (when, story id, the guide's record with a ``feedback`` note), for
    ``FeedbackStore.export``; the note says it came from the console, who gave it and what the
    classifier had attached."""
    rows = (
        await session.execute(
            select(m.ReviewLabel, m.Story)
            .join(m.Story, m.Story.id == m.ReviewLabel.story_id)
            .order_by(m.ReviewLabel.created_at, m.ReviewLabel.id)
        )
    ).all()
    if not rows:
        return []
    passed: dict[int, list[str]] = defaultdict(list)
    for story_id, topic in await session.execute(
        select(m.Classification.story_id, m.Classification.topic).where(
            m.Classification.story_id.in_({story.id for _, story in rows}), m.Classification.passed.is_(True)
        )
    ):
        passed[int(story_id)].append(str(topic))
    out = []
    for label, story in rows:
        out.append(
            (
                label.created_at,
                story.id,
                {
                    "title": story.title,
                    "summary": story.summary,
                    "url": story.url,
                    "outlet": story.outlet,
                    "published": story.published_at.date().isoformat(),
                    "topics": list(label.topics),
                    "hard_negative": not label.topics,
                    "feedback": {
                        "kind": "console_label",
                        "source": "console",
                        "alerted_topics": sorted(passed[story.id]),
                        "platform": "console",
                        "channel": "",
                        "user": label.labelled_by,
                        "at": label.created_at.isoformat(),
                    },
                },
            )
        )
    return out
