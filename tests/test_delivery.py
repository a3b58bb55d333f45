"""Routing, the outbox state machine and the console sink (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.delivery.services import Delivery, ensure_console_destination
from bot.settings import Settings
from bot.store import models as m
from bot.store.outbox import Row, Unit, group_units
from bot.store.repo import Store
from tests.support.newsdb import add_destination, add_story, deliveries, destination, open_store, source

TOPICS = ("distillation", "ip", "natsec", "release")


def settings(url: str, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": url,
        "delivery_max_backoff_seconds": 1.0,
        "delivery_lease_seconds": 30.0,
        "delivery_tick_seconds": 0.2,
    }
    base.update(over)
    return Settings(**base)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.engine.dispose()


def console(printed: list[str], store: Store, url: str, **over: Any) -> Delivery:
    return Delivery.build(store, settings(url, **over), TOPICS, write=printed.append)


async def test_routing_matches_topics_modes_scores_and_keywords(store: Store, database_url: str) -> None:
    a = await add_destination(store, "console", "a", [("natsec", "alerts", 0.0)])
    b = await add_destination(store, "console", "b", [("natsec", "digest", 0.0)])
    c = await add_destination(store, "console", "c", [("ip", "both", 0.0)])
    d = await add_destination(store, "console", "d", [("natsec", "both", 0.0)], exclude=["huawei"])
    e = await add_destination(store, "console", "e", [("natsec", "both", 0.95)])
    f = await add_destination(store, "console", "f", [("natsec", "both", 0.0)], include=["export controls"])
    g = await add_destination(
        store, "console", "g", [("natsec", "both", 0.3)]
    )  # own minimum, below the floor
    strong = await add_story(store, "US tightens export controls on Huawei AI chips", topics={"natsec": 0.8})
    weak = await add_story(
        store, "Senate hearing mentions AI", topics={"natsec": 0.55}
    )  # passes, not "strong"
    old = await add_story(store, "Backlog story", topics={"natsec": 0.9}, backlog=True)
    delivery = console([], store, database_url)
    await delivery.router.route([strong, weak, old])
    rows = await deliveries(store, kind="alert")
    got = {(r.destination_id, r.cluster_id) for r in rows}
    assert got == {
        (a, strong.cluster_id),
        (f, strong.cluster_id),
        (g, strong.cluster_id),
        (g, weak.cluster_id),
    }
    assert all(r.status == "pending" for r in rows)
    # b: digest only; c: other topic; d: excluded keyword; e: its minimum is above the score.
    assert not {b, c, d, e} & {r.destination_id for r in rows}
    # Routing twice never doubles (unique key + existing-row check).
    await delivery.router.route([strong, weak])
    assert len(await deliveries(store, kind="alert")) == 4


async def test_the_router_sees_every_rule_change_through_its_cache(store: Store, database_url: str) -> None:
    """Routes are cached and re-read when the database's routing_version moves: every edit path
    (subscriptions, keywords, a channel's cap or state) bumps it through triggers."""
    delivery = console([], store, database_url)
    router = delivery.router
    a = await add_destination(store, "console", "a", [("natsec", "alerts", 0.0)])
    one = await add_story(store, "First export rule story", topics={"natsec": 0.8})
    await router.route([one])
    assert {r.destination_id for r in await deliveries(store, kind="alert")} == {a}
    # A second channel subscribes; an include keyword then narrows the first.
    b = await add_destination(store, "console", "b", [("natsec", "alerts", 0.0)])
    async with store.sessions.begin() as session:
        session.add(m.ChannelKeyword(destination_id=a, kind="include", keyword="huawei"))
    two = await add_story(store, "Second export rule story", topics={"natsec": 0.8})
    await router.route([two])
    assert {
        r.destination_id for r in await deliveries(store, kind="alert") if r.cluster_id == two.cluster_id
    } == {b}
    # The subscription's own minimum rises above the score, and channel b goes inactive.
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Subscription).where(m.Subscription.destination_id == a).values(min_score=0.9)
        )
        await session.execute(update(m.Destination).where(m.Destination.id == b).values(active=False))
        await session.execute(
            update(m.ChannelKeyword).where(m.ChannelKeyword.destination_id == a).values(keyword="export")
        )
    three = await add_story(store, "Third export rule story", topics={"natsec": 0.8})
    four = await add_story(store, "Fourth export rule story", topics={"natsec": 0.95})
    await router.route([three, four])
    late = {(r.destination_id, r.cluster_id) for r in await deliveries(store, kind="alert")} - {
        (a, one.cluster_id),
        (b, two.cluster_id),
    }
    assert late == {(a, four.cluster_id)}
    # Delivery bookkeeping on a channel (leases, digest times) does not invalidate the cache.
    version = router._table.version if router._table else None
    async with store.sessions.begin() as session:
        await session.execute(update(m.Destination).values(next_digest_at=datetime.now(UTC)))
    await router.route([await add_story(store, "Fifth", topics={"natsec": 0.1})])
    assert router._table is not None and router._table.version == version


async def test_alert_cap_overflows_into_next_digest_with_note(store: Store, database_url: str) -> None:
    dest = await add_destination(store, "console", "x", [("natsec", "both", 0.0)], alert_cap_per_hour=2)
    stories = [await add_story(store, f"Export control story {i}", topics={"natsec": 0.9}) for i in range(4)]
    printed: list[str] = []
    delivery = console(printed, store, database_url)
    await delivery.router.route(stories)
    rows = await deliveries(store, kind="alert")
    assert [r.status for r in rows] == ["pending", "pending", "deferred", "deferred"]
    await delivery.worker.run_once()
    assert sum("● NEW" in p for p in printed) == 2
    planned = await delivery.digests.plan(dest, fire=datetime.now(UTC), now=datetime.now(UTC), advance=False)
    assert planned is not None and planned.entries == 2  # the two held back; the alerted two are not repeated
    await delivery.worker.run_once()
    digest = printed[-1]
    assert "2 stories over this channel's alert limit (2 per hour) are included here instead." in digest
    assert "Export control story 2" in digest and "Export control story 3" in digest
    assert "Export control story 0" not in digest
    # An hour later the cap has room again.
    later = await add_story(store, "Export control story 5", topics={"natsec": 0.9})
    async with store.sessions.begin() as session:
        await session.execute(update(m.Delivery).values(created_at=datetime.now(UTC) - timedelta(hours=2)))
    await delivery.router.route([later])
    assert (await deliveries(store, kind="alert"))[-1].status == "pending"


async def test_a_message_that_cannot_be_built_fails_alone(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose body raises (bad payload, a chart that cannot be drawn) is marked failed with
    the reason; the other channels' sends go on."""
    import bot.delivery.worker as worker_module

    bad = await add_destination(store, "console", "bad", [("natsec", "both", 0.0)])
    good = await add_destination(store, "console", "good", [("natsec", "both", 0.0)])
    story = await add_story(store, "Export control story", topics={"natsec": 0.9})
    printed: list[str] = []
    delivery = console(printed, store, database_url)
    await delivery.router.route([story])
    build = worker_module.unit_body

    def failing_for_one(platform: str, unit: Any, previous: Any) -> Any:
        if unit.lead.destination_id == bad:
            raise ValueError("payload from an older release")
        return build(platform, unit, previous)

    monkeypatch.setattr(worker_module, "unit_body", failing_for_one)
    await delivery.worker.run_once()
    rows = {r.destination_id: r for r in await deliveries(store, kind="alert")}
    assert rows[good].status == "sent" and sum("● NEW" in p for p in printed) == 1
    assert rows[bad].status == "failed" and "could not be built: ValueError" in (rows[bad].error or "")


async def test_alert_cap_holds_when_feeds_are_routed_concurrently(store: Store, database_url: str) -> None:
    # The poller routes each feed's stories as that feed finishes, several feeds at once (and other
    # replicas do too): the cap was read per call, so concurrent calls each saw room. The demo
    # posted 8 alerts under a cap of 5.
    await add_destination(store, "console", "x", [("natsec", "both", 0.0)], alert_cap_per_hour=2)
    stories = [await add_story(store, f"Export control story {i}", topics={"natsec": 0.9}) for i in range(6)]
    first, second = console([], store, database_url), console([], store, database_url)  # two replicas
    await asyncio.gather(
        *(
            router.route([story])
            for story, router in zip(stories, [first.router, second.router] * 3, strict=True)
        )
    )
    statuses = sorted(r.status for r in await deliveries(store, kind="alert"))
    assert statuses == ["deferred"] * 4 + ["pending"] * 2


async def test_console_destination_gets_alerts_and_digest_once(store: Store, database_url: str) -> None:
    s = settings(database_url)
    dest_id = await ensure_console_destination(store, s, TOPICS)
    assert dest_id is not None
    assert await ensure_console_destination(store, s, TOPICS) == dest_id  # idempotent
    printed: list[str] = []
    delivery = Delivery.build(store, s, TOPICS, write=printed.append)
    story = await add_story(
        store,
        "Anthropic says Chinese labs distilled Claude",
        topics={"distillation": 0.9},
        summary="Anthropic said three labs ran distillation campaigns. It banned the accounts.",
    )
    await delivery.router.route([story])
    assert await delivery.worker.run_once() == 1
    assert "Anthropic says Chinese labs distilled Claude" in printed[0]
    assert await delivery.worker.run_once() == 0  # sent means sent
    digest_only = await add_story(store, "Lab sues rival over model weights", topics={"ip": 0.6})
    await delivery.router.route([digest_only])  # 0.6 < alert floor? it is the floor: alert
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Destination).values(next_digest_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    planned = await delivery.digests.tick()
    assert [p.destination_id for p in planned] == [dest_id]
    await delivery.worker.drain(within=10)
    assert len(printed) == 3 and "Lab sues rival" in printed[1] and "Frontier Watch digest" not in printed[1]
    assert "quiet day" in printed[2]  # everything was alerted: the console asked for a quiet-day line
    row = await destination(store, dest_id)
    assert row.next_digest_at is not None and row.next_digest_at > datetime.now(UTC)
    # With a chat platform configured the console steps aside, saying why.
    await ensure_console_destination(store, settings(database_url, DISCORD_TOKEN="x"), TOPICS)
    row = await destination(store, dest_id)
    assert not row.active and row.inactive_reason == "a chat platform is configured"


async def test_replicas_starting_together_share_one_console_destination(database_url: str) -> None:
    """`docker compose up --scale run=3` on an empty database: every replica creates the console
    destination at start; the ones that lose the race must read the winner's row, not exit."""
    stores = [await open_store(database_url) for _ in range(3)]
    try:
        s = settings(database_url)
        ids = await asyncio.gather(*(ensure_console_destination(st, s, TOPICS) for st in stores))
        assert ids[0] is not None and set(ids) == {ids[0]}
        async with stores[0].sessions() as session:
            topics = (
                await session.scalars(
                    select(m.Subscription.topic).where(m.Subscription.destination_id == ids[0])
                )
            ).all()
        assert sorted(topics) == sorted(TOPICS)
    finally:
        for st in stores:
            await st.engine.dispose()


def test_units_group_digest_parts_in_order() -> None:
    now = datetime.now(UTC)

    def row(i: int, kind: str, part: int = 1, pos: int = 0) -> Row:
        return Row(i, 1, i, kind, "pending", "b1", 0, {"part": part, "pos": pos}, None, None, now)

    units = group_units(
        [row(1, "alert"), row(2, "digest", 1, 1), row(3, "digest", 1, 0), row(4, "digest", 2, 0)]
    )
    assert [(u.kind, u.ids) for u in units] == [("alert", [1]), ("digest", [3, 2]), ("digest", [4])]
    assert (
        len(
            Unit(
                "followup", (Row(123456789, 1, 1, "followup", "p", None, 0, {"seq": 4095}, None, None, now),)
            ).nonce
        )
        <= 25
    )


async def test_broken_channel_source_gets_one_notice(store: Store, database_url: str) -> None:
    dest = await add_destination(store, "console", "n")
    long_ago = datetime.now(UTC) - timedelta(days=3)
    src = await source(store, "Tiny Blog", origin="channel", created_at=long_ago)
    async with store.sessions.begin() as session:
        session.add(m.ChannelSource(destination_id=dest, source_id=src, added_by="u", created_at=long_ago))
        row = await session.get(m.Source, src)
        assert row is not None
        row.failure_count, row.last_error, row.last_success_at = 7, "HTTP 404", long_ago
    printed: list[str] = []
    delivery = console(printed, store, database_url)
    await delivery.digests.tick()
    await delivery.digests.tick()
    await delivery.worker.drain(within=10)
    notices = [p for p in printed if "Tiny Blog" in p]
    assert len(notices) == 1
    assert "HTTP 404" in notices[0] and f"/watch sources remove {src}" in notices[0]
    # Recovery clears it; a later breakage (disabled this time) is told again, once.
    async with store.sessions.begin() as session:
        await session.execute(update(m.Source).where(m.Source.id == src).values(failure_count=0))
    await delivery.digests.tick()
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Source)
            .where(m.Source.id == src)
            .values(failure_count=12, enabled=False, last_error="timeout")
        )
    await delivery.digests.tick()
    await delivery.digests.tick()
    await delivery.worker.drain(within=10)
    notices = [p for p in printed if "Tiny Blog" in p]
    assert len(notices) == 2 and "was disabled after repeated failures" in notices[1]


async def test_healthy_or_config_sources_get_no_notice(store: Store, database_url: str) -> None:
    dest = await add_destination(store, "console", "n")
    src = await source(store, "Fine Feed", origin="channel")
    async with store.sessions.begin() as session:
        session.add(
            m.ChannelSource(destination_id=dest, source_id=src, added_by="u", created_at=datetime.now(UTC))
        )
        row = await session.get(m.Source, src)
        assert row is not None
        row.failure_count, row.last_success_at = 2, datetime.now(UTC) - timedelta(hours=2)  # failing < a day
    delivery = console([], store, database_url)
    await delivery.digests.tick()
    assert await deliveries(store, kind="notice") == []
    async with store.sessions() as session:
        assert (await session.scalar(select(m.ChannelSource.failure_notice_at))) is None


async def test_stories_stored_but_not_routed_are_routed_once_at_recovery(
    store: Store, database_url: str
) -> None:
    """A crash between storing a story and routing it loses no alert: recovery routes it, once."""
    from bot.domain import Classification, Entry, SourceSpec
    from bot.pipeline.cluster import ClusterIndex
    from bot.pipeline.ingest import Ingestor

    class Natsec:
        topics = TOPICS

        def classify(self, title: str, summary: str = "", url: str | None = None) -> Classification:
            return Classification({"natsec": 0.9}, ("natsec",), {"natsec": ("export controls",)})

    dest = await add_destination(store, "console", "recover", [("natsec", "both", 0.0)])
    await store.sync_sources([SourceSpec(name="Wire", url="https://wire.example/feed")])
    await store.save_fetch_states([{"id": s.id, "backlog_done": True} for s in await store.list_sources()])
    [claimed] = await store.claim_due_sources(timedelta(minutes=5))
    now = datetime.now(UTC)
    ingestor = Ingestor(store, Natsec(), ClusterIndex())
    entries = [
        Entry(
            guid="1",
            url="https://wire.example/1",
            title="US widens chip export controls",
            summary="",
            published=now,
        ),
        Entry(
            guid="2",
            url="https://wire.example/2",
            title="Old post",
            summary="",
            published=now - timedelta(days=9),
        ),
    ]
    result = await ingestor.ingest(claimed, entries, now, default_outlet="Wire")
    await ingestor.close()
    # The process "died" here: the poller never handed the stories to the router.
    async with store.sessions() as session:
        routed = dict((await session.execute(select(m.Story.title, m.Story.routed))).all())
    assert routed == {"US widens chip export controls": False, "Old post": True}  # old posts never alert

    delivery = console([], store, database_url)
    assert await delivery.router.recover() == 0  # just stored: the poller may be routing it right now
    later = datetime.now(UTC) + timedelta(minutes=3)
    assert await delivery.router.recover(later) == 1
    alerts = await deliveries(store, kind="alert")
    [fresh] = [s.story_id for s in result.new_stories if s.title == "US widens chip export controls"]
    assert [(r.destination_id, r.story_id) for r in alerts] == [(dest, fresh)]
    assert await delivery.router.recover(later) == 0  # routed now: a second start queues nothing
    assert len(await deliveries(store, kind="alert")) == 1
