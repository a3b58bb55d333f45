"""Retention (issue 12): old rows go, in small batches; what is still wanted stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.settings import Settings, SettingsError
from bot.store import models as m
from bot.store.db import create_engine, migrate
from bot.store.repo import Store
from bot.store.retention import Retention
from tests.support.newsdb import add_destination, add_story

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=500)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield Store(engine)
    await engine.dispose()


async def count(store: Store, model: type[m.Base]) -> int:
    async with store.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def delivery(store: Store, dest: int, cluster: int, story: int, status: str, at: datetime) -> int:
    async with store.sessions.begin() as session:
        row = m.Delivery(
            destination_id=dest,
            cluster_id=cluster,
            story_id=story,
            kind="alert",
            status=status,
            next_attempt_at=at,
            created_at=at,
            payload={},
        )
        session.add(row)
        await session.flush()
        return row.id


async def test_old_rows_go_in_batches_and_what_is_wanted_stays(store: Store) -> None:
    dest = await add_destination(store, "console", "c")
    gone = [await add_story(store, f"Old story {n}", first_seen=OLD) for n in range(7)]
    for s in gone:
        await delivery(store, dest, s.cluster_id, s.story_id, "sent", OLD)
    # An old cluster with a recent member: the old member goes, the cluster and the new one stay.
    founder = await add_story(store, "Old founder", first_seen=OLD)
    member = await add_story(store, "Recent member", cluster_id=founder.cluster_id, first_seen=NOW)
    # Still to be sent: an old story behind a pending alert, and one whose cluster has a pending digest.
    pending = await add_story(store, "Old but pending", first_seen=OLD)
    await delivery(store, dest, pending.cluster_id, pending.story_id, "pending", OLD)
    digest = await add_story(store, "Old, in a pending digest", first_seen=OLD)
    await delivery(store, dest, digest.cluster_id, 0, "sending", NOW)
    # A reader's feedback is labelled data: its story and alert stay.
    judged = await add_story(store, "Old and judged", first_seen=OLD)
    judged_alert = await delivery(store, dest, judged.cluster_id, judged.story_id, "sent", OLD)
    async with store.sessions.begin() as session:
        session.add(
            m.Feedback(
                delivery_id=judged_alert,
                story_id=judged.story_id,
                platform="slack",
                channel_id="C1",
                user_id="U1",
                kind="not_relevant",
                alerted_topics=["natsec"],
                topics=[],
                created_at=OLD,
            )
        )
    fresh = await add_story(store, "Fresh story", first_seen=NOW)

    report = await Retention(store, 400, batch=3, pause=0).prune(NOW)

    assert (report.stories, report.deliveries) == (8, 7)
    assert report.clusters == 7  # the founder's cluster still has its recent member
    async with store.sessions() as session:
        left = set((await session.scalars(select(m.Story.title))).all())
        entries = await session.scalar(select(func.count()).select_from(m.SourceEntry))
        classified = await session.scalar(select(func.count(func.distinct(m.Classification.story_id))))
        cluster = await session.get(m.Cluster, founder.cluster_id)
    assert left == {
        "Recent member",
        "Old but pending",
        "Old, in a pending digest",
        "Old and judged",
        "Fresh story",
    }
    assert entries == 5 and classified == 5 and cluster is not None
    assert await count(store, m.Delivery) == 3 and await count(store, m.Feedback) == 1
    assert member.story_id and fresh.story_id
    # Nothing old is left to prune: a second pass deletes nothing.
    assert (await Retention(store, 400, batch=3, pause=0).prune(NOW)).total == 0


async def test_zero_days_keeps_everything(store: Store) -> None:
    await add_story(store, "Ancient", first_seen=NOW - timedelta(days=5000))
    assert (await Retention(store, 0).prune(NOW)).total == 0
    assert await count(store, m.Story) == 1


def test_retention_days_setting() -> None:
    assert Settings().retention_days == 400
    assert Settings(retention_days=0).retention_days == 0
    with pytest.raises((SettingsError, ValueError), match="at least 8"):
        Settings(retention_days=3)


async def test_a_retention_pass_under_way_stops_with_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shutdown cancels a running pass (it resumes at the next start) and waits for it to finish
    its current batch, instead of returning while it still uses the engine the bot disposes next."""
    import asyncio

    from bot.scheduler import build_scheduler, run_forever

    started, cancelled = asyncio.Event(), asyncio.Event()

    class SlowRetention(Retention):
        async def prune(self, now: datetime) -> Any:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.5)  # the batch in flight commits or rolls back
                cancelled.set()
                raise

    class IdlePoller:
        async def poll_due(self) -> Any:
            await asyncio.sleep(3600)

    scheduler = build_scheduler(IdlePoller(), 3600, SlowRetention(None, 400))  # type: ignore[arg-type]
    scheduler.get_job("retention").modify(next_run_time=datetime.now(UTC))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_forever(scheduler, stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    await asyncio.wait_for(runner, 15)
    assert cancelled.is_set()
