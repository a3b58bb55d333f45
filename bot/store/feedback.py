"""Readers' feedback on alerts ("Not relevant", "Wrong topic"), stored as labelled examples.

A click names a delivery (the alert message); the story, its text and what the alert said are taken
from the store, so an exported example is exactly the text the classifier saw. One reader has one
judgement per alert: a second click replaces the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import models as m
from bot.store.db import session_factory
from bot.store.review import console_label_records

__all__ = ["FEEDBACK_KINDS", "FeedbackError", "FeedbackStore", "Recorded"]

FEEDBACK_KINDS = ("not_relevant", "wrong_topic")


class FeedbackError(ValueError):
    """The click cannot be recorded (unknown alert, unknown topic); the message is for the reader."""


@dataclass(frozen=True, slots=True)
class Recorded:
    title: str
    kind: str
    topics: tuple[str, ...]
    replaced: bool  # the reader had already judged this alert


class FeedbackStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)

    async def record(
        self,
        delivery_id: int,
        *,
        platform: str,
        channel_id: str,
        user_id: str,
        kind: str,
        topics: Iterable[str] = (),
        known_topics: Iterable[str] = (),
        now: datetime | None = None,
    ) -> Recorded:
        if kind not in FEEDBACK_KINDS:
            raise FeedbackError(f"unknown feedback {kind!r}")
        chosen = tuple(dict.fromkeys(topics))
        allowed = set(known_topics)
        unknown = [t for t in chosen if allowed and t not in allowed]
        if unknown:
            raise FeedbackError(f"unknown topic {unknown[0]!r}; topics are {', '.join(sorted(allowed))}")
        if kind == "not_relevant":
            chosen = ()
        now = now or datetime.now(UTC)
        async with self.sessions.begin() as session:
            delivery = await session.get(m.Delivery, delivery_id)
            if delivery is None or delivery.story_id is None or delivery.kind not in ("alert", "followup"):
                raise FeedbackError("this alert is no longer known to the bot")
            story = await session.get(m.Story, delivery.story_id)
            if story is None:
                raise FeedbackError("this story is no longer stored")
            alerted = list(
                (
                    await session.scalars(
                        select(m.Classification.topic).where(
                            m.Classification.story_id == story.id, m.Classification.passed.is_(True)
                        )
                    )
                ).all()
            )
            row = await session.scalar(
                select(m.Feedback).where(m.Feedback.delivery_id == delivery_id, m.Feedback.user_id == user_id)
            )
            replaced = row is not None
            if row is None:
                row = m.Feedback(delivery_id=delivery_id, story_id=story.id, user_id=user_id)
                session.add(row)
            row.platform, row.channel_id = platform, channel_id
            row.kind, row.alerted_topics, row.topics, row.created_at = kind, alerted, list(chosen), now
            return Recorded(story.title, kind, chosen, replaced)

    async def count(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (
                await session.execute(select(m.Feedback.kind, func.count()).group_by(m.Feedback.kind))
            ).all()
        counts = {kind: 0 for kind in FEEDBACK_KINDS}
        counts.update({str(kind): int(n) for kind, n in rows})
        return counts

    async def count_for_channel(self, platform: str, channel_id: str) -> int:
        async with self.sessions() as session:
            n = await session.scalar(
                select(func.count())
                .select_from(m.Feedback)
                .where(m.Feedback.platform == platform, m.Feedback.channel_id == channel_id)
            )
        return int(n or 0)

    async def export(self) -> list[dict[str, object]]:
        """Every judged story once, in the labelling guide's record format (latest judgement wins,
        a chat click or a console label), with who judged it, where, when, and what the alert (or
        the classifier) had said."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(m.Feedback, m.Story)
                    .join(m.Story, m.Story.id == m.Feedback.story_id)
                    .order_by(m.Feedback.created_at, m.Feedback.id)
                )
            ).all()
            console = await console_label_records(session)
        judged: list[tuple[datetime, int, dict[str, object]]] = []
        for fb, story in rows:
            record: dict[str, object] = {
                "title": story.title,
                "summary": story.summary,
                "url": story.url,
                "outlet": story.outlet,
                "published": story.published_at.date().isoformat(),
                "topics": list(fb.topics),
                "hard_negative": not fb.topics,
                "feedback": {
                    "kind": fb.kind,
                    "source": "chat",
                    "alerted_topics": list(fb.alerted_topics),
                    "platform": fb.platform,
                    "channel": fb.channel_id,
                    "user": fb.user_id,
                    "at": fb.created_at.isoformat(),
                },
            }
            judged.append((fb.created_at, story.id, record))
        # Chat clicks and console labels (bot/store/review.py) together, in time order: the
        # latest judgement of a story is the one exported, wherever it was given.
        judged.extend(console)
        latest: dict[int, dict[str, object]] = {}
        for _at, story_id, record in sorted(judged, key=lambda j: j[0]):
            latest.pop(story_id, None)  # re-inserted: the order is that of the latest judgements
            latest[story_id] = record
        return list(latest.values())


def export_lines(records: Iterable[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
