"""The Review backend: stories near a topic's threshold, stories readers gave chat feedback on, and
labels given in the console, stored, exported with the chat feedback in the labelling guide's
format and read by `train`'s loader (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.classify import load_classifier, topic_thresholds
from bot.classify.evaluate import load_labeled
from bot.classify.train import load_training_data
from bot.store.feedback import FeedbackStore, export_lines
from bot.store.review import LabelError, ReviewStore
from tests.support.newsdb import add_destination, add_story, open_store

TOPICS = ("distillation", "ip", "natsec", "release")
THRESHOLDS = {"distillation": 0.5, "ip": 0.6, "natsec": 0.5, "release": 0.4}
NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


async def test_queues_labels_and_export_for_train(database_url: str, tmp_path: Path) -> None:
    store = await open_store(database_url)
    try:
        day = NOW - timedelta(days=2)
        close = await add_story(store, "Close call on export rules", topics={"natsec": 0.52}, published=day)
        closer = await add_story(
            store, "Lab says rival copied outputs", topics={"distillation": 0.49, "ip": 0.3}, published=day
        )
        sure = await add_story(store, "Clear natsec story", topics={"natsec": 0.95}, published=day)
        old = await add_story(
            store, "Old close call", topics={"natsec": 0.5}, published=NOW - timedelta(days=90)
        )
        review = ReviewStore(store.engine, TOPICS)

        queue = await review.near_threshold(THRESHOLDS, margin=0.05, now=NOW)
        assert [i.story_id for i in queue] == [closer.story_id, close.story_id]  # closest first
        assert queue[0].closest == pytest.approx(0.01)
        assert [s.topic for s in queue[0].scores] == ["distillation", "ip"]  # taxonomy order
        assert queue[0].scores[0].threshold == 0.5 and not queue[0].scores[0].passed
        assert sure.story_id not in {i.story_id for i in queue} and old.story_id not in {
            i.story_id for i in queue
        }

        # Chat feedback on an alert: the story is in the feedback queue.
        dest = await add_destination(store, "discord", "300000000000000001")
        from bot.store import models as m

        async with store.sessions.begin() as session:
            row = m.Delivery(
                destination_id=dest,
                cluster_id=sure.cluster_id,
                story_id=sure.story_id,
                kind="alert",
                status="sent",
                next_attempt_at=NOW,
                created_at=NOW,
                payload={},
            )
            session.add(row)
            await session.flush()
            delivery_id = row.id
        await FeedbackStore(store.engine).record(
            delivery_id,
            platform="discord",
            channel_id="300000000000000001",
            user_id="u1",
            kind="wrong_topic",
            topics=["ip"],
            known_topics=TOPICS,
            now=NOW - timedelta(hours=3),
        )
        judged = await review.with_feedback(THRESHOLDS, now=NOW)
        assert [i.story_id for i in judged] == [sure.story_id]
        assert judged[0].feedback[0].kind == "wrong_topic" and judged[0].feedback[0].topics == ("ip",)

        # Console labels: the guide's topics, or none.
        stored = await review.store_label(
            closer.story_id, ["distillation", "ip"], user="alice", known_topics=TOPICS, now=NOW
        )
        assert stored.topics == ("distillation", "ip") and not stored.replaced
        again = await review.store_label(
            closer.story_id,
            ["distillation"],
            user="alice",
            known_topics=TOPICS,
            now=NOW + timedelta(minutes=1),
        )
        assert again.replaced  # one label per story and person
        await review.store_label(close.story_id, [], user="bob", known_topics=TOPICS, now=NOW)
        await review.store_label(sure.story_id, ["natsec", "ip"], user="carol", known_topics=TOPICS, now=NOW)
        with pytest.raises(LabelError, match="unknown topic"):
            await review.store_label(close.story_id, ["weather"], user="bob", known_topics=TOPICS)
        with pytest.raises(LabelError, match="no longer stored"):
            await review.store_label(999_999, [], user="bob", known_topics=TOPICS)
        assert await review.labels_count() == 3

        # Labelled stories leave the queues unless asked for.
        assert await review.near_threshold(THRESHOLDS, margin=0.05, now=NOW) == []
        assert await review.with_feedback(THRESHOLDS, now=NOW) == []
        labelled = await review.near_threshold(THRESHOLDS, margin=0.05, now=NOW, include_labelled=True)
        assert labelled[0].label == ("distillation",) and labelled[0].labelled_by == "alice"

        # Export: chat feedback and console labels together, the latest judgement of each story.
        records = await FeedbackStore(store.engine).export()
        by_title = {str(r["title"]): r for r in records}
        assert set(by_title) == {
            "Lab says rival copied outputs",
            "Close call on export rules",
            "Clear natsec story",
        }
        console = by_title["Lab says rival copied outputs"]
        assert console["topics"] == ["distillation"] and console["hard_negative"] is False
        assert console["feedback"] == {
            "kind": "console_label",
            "source": "console",
            "alerted_topics": [],
            "platform": "console",
            "channel": "",
            "user": "alice",
            "at": (NOW + timedelta(minutes=1)).isoformat(),
        }
        assert by_title["Close call on export rules"]["hard_negative"] is True
        # The chat click came first, the console label later: the label is exported.
        assert by_title["Clear natsec story"]["topics"] == ["natsec", "ip"]
        assert by_title["Clear natsec story"]["feedback"]["source"] == "console"  # type: ignore[index]

        # ...and `train` reads them (the same loader `train --feedback` / `--extra` uses).
        exported = tmp_path / "feedback.jsonl"
        exported.write_text(export_lines(records), encoding="utf-8")
        items = {i.title: i for i in load_labeled(exported)}
        assert items["Lab says rival copied outputs"].topics == {"distillation"}
        assert items["Close call on export rules"].topics == set()
        data = load_training_data([exported], [exported])
        assert len(data.train) == 3
    finally:
        await store.engine.dispose()


def test_thresholds_come_from_the_classifier() -> None:
    from bot.settings import Settings

    settings = Settings(database_url="sqlite+aiosqlite:///unused")
    hybrid = topic_thresholds(load_classifier(settings.topics_file, settings.topic_model))
    rules = topic_thresholds(load_classifier(settings.topics_file, "off"))
    assert set(hybrid) == set(rules) >= {"distillation", "ip", "natsec", "release"}
    assert all(0 < t < 1 for t in [*hybrid.values(), *rules.values()])
