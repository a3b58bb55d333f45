"""Pause and resume (issue 13, item 3): a source (by its channels or the operator) and a channel.

Handlers and the store run on SQLite and PostgreSQL; the end-to-end test sends through the real
discord.py and slack_sdk clients to the local Discord and Slack stand-ins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from discord.http import Route
from sqlalchemy import select, update

from bot.store import models as m
from bot.store.chat import ChatStore
from bot.store.destinations import lock_routing
from bot.store.outbox import Outbox
from bot.store.repo import Store
from handlers import Command, Reply, Rights, handle, parse_text
from handlers.model import Invocation
from tests.support.chat_env import NOW, RSS, ChatEnv, chat_env
from tests.support.discord_api import DiscordAPI
from tests.support.feedserver import FeedServer
from tests.support.newsdb import add_destination, add_story, build_delivery, deliveries, open_store, source
from tests.support.slack_api import SlackAPI

MANAGER = "the Manage Channels permission"
LEASE = timedelta(seconds=45)


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url) as e:
        yield e


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        server.add("/feed.xml", RSS)
        server.add("/other.xml", RSS.replace(b"Policy Wire", b"Chip Wire"))
        yield server


def command(
    text: str | Invocation,
    *,
    platform: str = "slack",
    workspace: str = "T1",
    channel: str = "C1",
    manager: bool = True,
    user: str = "alice",
) -> Command:
    return Command(
        platform=platform,
        workspace_id=workspace,
        channel_id=channel,
        user_id="U1",
        rights=Rights.fixed(manager, MANAGER),
        invocation=parse_text(text) if isinstance(text, str) else text,
        channel_name=f"chan-{channel.lower()}",
        user_name=user,
    )


async def run(env: ChatEnv, text: str, **kwargs: Any) -> Reply:
    return await handle(env.deps, command(text, **kwargs))


def store_of(env: ChatEnv) -> Store:
    return Store(env.store.engine)


async def claimable(store: Store, now: datetime) -> set[int]:
    """Ids the poller would claim now (the claim takes a lease; released right after)."""
    claimed = await store.claim_due_sources(LEASE, now, owner="test")
    async with store.sessions.begin() as session:
        await session.execute(update(m.Source).values(lease_until=None, lease_owner=None))
    return {c.id for c in claimed}


# ---------------------------------------------------------------------------------------- parsing
def test_parser_knows_pause_resume_and_the_source_actions() -> None:
    assert (parse_text("pause").group, parse_text("pause").action) == ("pause", None)
    assert parse_text("RESUME").group == "resume"
    inv = parse_text("sources pause Policy Wire")
    assert (inv.group, inv.action, inv.rest) == ("sources", "pause", "Policy Wire")
    assert parse_text("sources resume 3").args == ("3",)


async def test_help_lists_the_new_commands(env: ChatEnv) -> None:
    text = (await run(env, "help", manager=False)).text
    for usage in (
        "`/watch pause`",
        "`/watch resume`",
        "`/watch sources pause <id|name>` / `resume <id|name>`",
    ):
        assert usage in text


# ---------------------------------------------------------------------------------------- channel pause
async def test_pause_and_resume_a_channel(env: ChatEnv) -> None:
    await run(env, "subscribe natsec")
    reply = await run(env, "pause")
    assert reply.status == "ok" and not reply.ephemeral  # the whole channel sees it
    assert reply.title == "Paused: no alerts or digests until `/watch resume`."
    assert "resuming posts no backlog" in reply.text
    dest = await env.destination("C1")
    assert dest is not None and dest.paused_at == NOW and dest.paused_by == "alice"

    status = (await run(env, "status", manager=False)).text
    assert (
        "⏸ Paused by alice since 2026-03-28 12:00 UTC: no alerts or digests until `/watch resume`." in status
    )
    again = await run(env, "pause", user="bob")
    assert again.status == "info" and "already paused by alice since 2026-03-28 12:00 UTC" in again.title

    # Other configuration commands work and leave the pause in place.
    assert (await run(env, "subscribe ip")).status == "ok"
    dest = await env.destination("C1")
    assert dest is not None and dest.paused_at is not None

    env.enable_digests()
    digest_now = await run(env, "digest now")
    assert digest_now.status == "error" and "paused" in digest_now.title and env.digests.calls == []

    reply = await run(env, "resume")
    assert reply.status == "ok" and not reply.ephemeral
    assert reply.title == "Resumed: alerts and digests are back on in this channel."
    assert "what arrived while it was paused is not" in reply.text
    dest = await env.destination("C1")
    assert dest is not None and dest.paused_at is None and dest.paused_by is None
    # The next digest covers only what arrives from now on.
    assert dest.last_digest_at == NOW and dest.next_digest_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert "Paused by" not in (await run(env, "status")).text

    not_paused = await run(env, "resume")
    assert not_paused.status == "info" and "not paused" in not_paused.title


async def test_pause_mistakes_and_rights_are_ephemeral_and_change_nothing(env: ChatEnv) -> None:
    reply = await run(env, "pause now please")
    assert reply.status == "error" and reply.ephemeral
    assert "`/watch pause` takes nothing after it, not `now please`" in reply.title
    assert "`/watch sources pause <id|name>`" in reply.text and "`/watch resume`" in reply.text
    refused = await run(env, "pause", manager=False)
    assert refused.status == "refused" and refused.ephemeral and MANAGER in refused.title
    refused = await run(env, "resume", manager=False)
    assert refused.status == "refused"
    assert await env.rows(m.Destination) == []


async def test_pause_drops_what_was_queued_and_resume_revives_an_unreachable_channel(env: ChatEnv) -> None:
    await run(env, "subscribe natsec")
    [dest] = await env.rows(m.Destination)
    store = store_of(env)
    story = await add_story(store, "Export controls widen", topics={"natsec": 0.9})
    async with env.store.sessions.begin() as session:
        session.add(
            m.Delivery(
                destination_id=dest.id,
                cluster_id=story.cluster_id,
                story_id=story.story_id,
                kind="alert",
                status="pending",
                next_attempt_at=NOW,
                created_at=NOW,
                payload={},
            )
        )
    reply = await run(env, "pause")
    assert "1 post waiting to go out here were dropped" in reply.text
    [row] = await deliveries(store)
    assert row.status == "dropped" and row.error == "channel paused by alice"

    # The platform marks the paused channel unreachable; /watch resume lifts both.
    await Outbox(store).deactivate(dest.id, "Slack: not_in_channel")
    status = (await run(env, "status")).text
    assert "Posting here is paused: Slack: not_in_channel" in status and "`/watch resume`" in status
    reply = await run(env, "resume")
    assert reply.status == "ok" and "try posting here again" in reply.text
    [dest] = await env.rows(m.Destination)
    assert dest.active and dest.inactive_reason is None and dest.paused_at is None

    # Unreachable alone (no pause): /watch resume revives it too...
    await Outbox(store).deactivate(dest.id, "Slack: channel_not_found")
    reply = await run(env, "resume")
    assert reply.status == "ok" and "try posting here again" in reply.text
    assert "what arrived while it was paused" not in reply.text
    # ...and so does any configuration command, including the ones that only remove things.
    for text in ("keywords add nvidia", "keywords remove nvidia", "unsubscribe natsec"):
        await Outbox(store).deactivate(dest.id, "Slack: channel_not_found")
        assert (await run(env, text)).status == "ok", text
        [dest] = await env.rows(m.Destination)
        assert dest.active and dest.inactive_reason is None, text


# ---------------------------------------------------------------------------------------- source pause
async def test_a_channel_pauses_and_resumes_a_feed_it_added(env: ChatEnv, feeds: FeedServer) -> None:
    store = store_of(env)
    await run(env, f"sources add {feeds.url('/feed.xml')}")
    [src] = await env.rows(m.Source)
    assert await claimable(store, NOW) == {src.id}

    reply = await run(env, "sources pause policy wire")  # by name, any case
    assert reply.status == "ok" and not reply.ephemeral
    assert (
        reply.title
        == f"Paused Policy Wire (id `{src.id}`): it is not polled until `/watch sources resume {src.id}`."
    )
    assert await claimable(store, NOW) == set()
    text = (await run(env, "status", manager=False)).text
    assert (
        f"Policy Wire — paused by alice since 2026-03-28 12:00 UTC (`/watch sources resume {src.id}`)" in text
    )
    assert "paused by alice" in (await run(env, "sources list", manager=False)).text
    again = await run(env, f"sources pause {src.id}")
    assert again.status == "info" and "already paused by alice" in again.title

    later = NOW + timedelta(hours=2)
    async with env.store.sessions.begin() as session:  # as if it had been polled just before
        await session.execute(update(m.Source).values(next_poll_at=later + timedelta(hours=1)))
    env.deps.clock = lambda: later
    reply = await run(env, f"sources resume #{src.id}")
    assert (
        reply.status == "ok"
        and reply.title == f"Resumed Policy Wire (id `{src.id}`): it is polled again now."
    )
    [src] = await env.rows(m.Source)
    assert src.next_poll_at == later  # due now
    assert await claimable(store, later) == {src.id}
    not_paused = await run(env, f"sources resume {src.id}")
    assert not_paused.status == "info" and "is not paused in this channel" in not_paused.title


async def test_a_feed_another_channel_still_wants_stays_polled(env: ChatEnv, feeds: FeedServer) -> None:
    store = store_of(env)
    url = feeds.url("/feed.xml")
    await run(env, f"sources add {url}", channel="C1")
    await run(env, f"sources add {url}", channel="C2", workspace="T2")  # another workspace
    [src] = await env.rows(m.Source)
    reply = await run(env, f"sources pause {src.id}", channel="C1")
    assert reply.title == f"Paused Policy Wire (id `{src.id}`) for this channel."
    assert "1 other channel also added it and did not pause it, so it is still polled" in reply.text
    assert await claimable(store, NOW) == {src.id}
    await run(env, f"sources pause {src.id}", channel="C2", workspace="T2", user="bob")
    assert await claimable(store, NOW) == set()  # nobody wants it now
    pauses = await store.channel_pauses()
    assert [(p.channel, p.by) for p in pauses[src.id]] == [
        ("slack #chan-c1", "alice"),
        ("slack #chan-c2", "bob"),
    ]
    await run(env, f"sources resume {src.id}", channel="C2", workspace="T2")
    assert await claimable(store, NOW) == {src.id}


async def test_built_in_sources_are_paused_by_the_operator_only(env: ChatEnv, feeds: FeedServer) -> None:
    store = store_of(env)
    builtin = await source(store, "Federal Register", next_poll_at=NOW - timedelta(minutes=1))
    reply = await run(env, "sources pause Federal Register")
    assert reply.status == "error" and reply.ephemeral
    assert reply.title == f"Federal Register (id `{builtin}`) is one of this installation's built-in sources."
    assert '`frontierwatch sources disable "Federal Register"`' in reply.text
    assert (await run(env, f"sources pause {builtin}")).title == reply.title
    # A channel that added the built-in feed's URL has a link, but pausing it is still refused.
    async with env.store.sessions.begin() as session:
        row = await session.get(m.Source, builtin)
        assert row is not None
        row.url = feeds.url("/feed.xml")
        row.key = f"feed:{row.url}"
    await run(env, f"sources add {feeds.url('/feed.xml')}")
    assert (await run(env, f"sources pause {builtin}")).status == "error"
    assert builtin in await claimable(store, NOW)

    unknown = await run(env, "sources pause Nowhere Daily")
    assert unknown.status == "error" and unknown.ephemeral
    assert unknown.title == "This channel added no source `Nowhere Daily`."
    assert "Give the id or name of a feed this channel added: none." in unknown.text
    missing = await run(env, "sources resume")
    assert missing.status == "error" and "Which source" in missing.title
    refused = await run(env, "sources pause 1", manager=False)
    assert refused.status == "refused"


async def test_the_operator_pause_skips_polling_until_enabled(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        now = datetime.now(UTC)
        wire = await source(store, "Wire", next_poll_at=now - timedelta(minutes=5))
        other = await source(store, "Other", next_poll_at=now - timedelta(minutes=5))
        paused = await store.pause_source(wire, "carol (operator)", now)
        assert paused.changed and paused.paused_by == "carol (operator)"
        assert await claimable(store, now) == {other}
        # A restart re-syncs the sources file; the pause is not the file's `enabled`, so it stays.
        assert (await store.pause_source(wire, "dave (operator)", now)).paused_by == "carol (operator)"
        later = now + timedelta(minutes=1)
        resumed = await store.resume_source(wire, later)
        assert resumed.changed and resumed.paused_at is None
        rows = {s.id: s for s in await store.list_sources()}
        assert rows[wire].next_poll_at == later
        assert await claimable(store, later) == {wire, other}
    finally:
        await store.engine.dispose()


# ---------------------------------------------------------------------------------------- routing and digests
async def test_router_and_digest_clock_skip_a_paused_channel(database_url: str) -> None:
    store = await open_store(database_url)
    chat = ChatStore(store.engine)
    try:
        delivery = build_delivery(store, ("natsec",))
        soon = datetime.now(UTC) + timedelta(hours=1)
        paused_id = await add_destination(store, "slack", "C1", workspace_id="T1", next_digest_at=soon)
        other_id = await add_destination(store, "slack", "C2", workspace_id="T1", next_digest_at=soon)
        # The router caches the channels' rules; this routing fills the cache before the pause.
        await delivery.router.route([await add_story(store, "Warm-up story", topics={"natsec": 0.9})])
        await handle_pause(chat, "pause")
        await delivery.router.route([await add_story(store, "While paused", topics={"natsec": 0.9})])
        rows = await deliveries(store, kind="alert")
        assert sorted((r.destination_id, r.status) for r in rows if r.story_id) == sorted(
            [(paused_id, "dropped"), (other_id, "pending"), (other_id, "pending")]
        )
        # The digest clock neither plans nor claims it, even when its time has come.
        due = datetime.now(UTC) + timedelta(days=2)
        claimed = {d for d, _ in await delivery.digests.claim_due(due)}
        assert paused_id not in claimed and other_id in claimed

        await handle_pause(chat, "resume")
        after = await add_story(store, "After resume", topics={"natsec": 0.9})
        await delivery.router.route([after])
        assert {r.destination_id for r in await deliveries(store, story_id=after.story_id)} == {
            paused_id,
            other_id,
        }
    finally:
        await store.engine.dispose()


async def handle_pause(chat: ChatStore, text: str, *, platform: str = "slack", channel: str = "C1") -> Reply:
    from handlers import HandlerDeps

    async def no_check(url: str) -> Any:
        raise AssertionError("no feed is checked here")

    deps = HandlerDeps(store=chat, topics={"natsec": "National security"}, check_feed=no_check)
    workspace = "T1" if platform == "slack" else "W1"
    reply = await handle(deps, command(text, platform=platform, workspace=workspace, channel=channel))
    assert reply.status == "ok", reply.text
    return reply


# ---------------------------------------------------------------------------------------- end to end
DCH = "300000000000000001"


@pytest.fixture(autouse=True)
def discord_base() -> Iterator[None]:
    original = Route.BASE
    yield
    Route.BASE = original


async def test_a_paused_channel_gets_nothing_and_the_next_story_after_resume(
    tmp_path: Path, shared_dir: Path
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    chat = ChatStore(store.engine)
    async with DiscordAPI(shared=shared_dir) as discord_api, SlackAPI(shared=shared_dir) as slack_api:
        delivery = build_delivery(
            store,
            ("natsec",),
            DISCORD_TOKEN="test-token",
            discord_api_base=discord_api.api_base,
            SLACK_BOT_TOKEN="xoxb-test",
            slack_api_base=slack_api.api_base,
        )
        try:
            await add_destination(store, "discord", DCH, workspace_id="W1")
            await add_destination(store, "slack", "C1", workspace_id="T1")
            await handle_pause(chat, "pause", platform="discord", channel=DCH)
            await handle_pause(chat, "pause", platform="slack", channel="C1")
            for title in ("Chip export rule tightened", "Second paused story"):
                await delivery.router.route([await add_story(store, title, topics={"natsec": 0.9})])
            await delivery.worker.drain(within=10)
            assert discord_api.posted(DCH) == [] and slack_api.messages.get("C1", []) == []

            await handle_pause(chat, "resume", platform="discord", channel=DCH)
            await handle_pause(chat, "resume", platform="slack", channel="C1")
            await delivery.worker.drain(within=5)
            assert discord_api.posted(DCH) == [] and slack_api.messages.get("C1", []) == []  # no backlog
            await delivery.router.route([await add_story(store, "Entity List grows", topics={"natsec": 0.9})])
            await delivery.worker.drain(within=20)
            titles = [e["title"] for msg in discord_api.posted(DCH) for e in msg["embeds"]]
            assert len(titles) == 1 and "Entity List grows" in titles[0]
            [message] = slack_api.messages["C1"]
            assert "Entity List grows" in message["text"] or "Entity List grows" in str(message["blocks"])
            assert "Chip export" not in str(slack_api.messages["C1"]) + str(discord_api.posted(DCH))
            assert discord_api.spec_errors == [] and slack_api.spec_errors == []
        finally:
            await delivery.worker.stop()
            await store.engine.dispose()


async def test_a_pause_stops_a_worker_between_units(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        dest = await add_destination(store, "slack", "C1", workspace_id="T1")
        outbox = Outbox(store)
        now = datetime.now(UTC)
        assert await outbox.claim_destinations(now, LEASE, 10, owner="w") == []
        async with store.sessions.begin() as session:
            session.add(
                m.Delivery(
                    destination_id=dest,
                    cluster_id=1,
                    kind="alert",
                    next_attempt_at=now,
                    created_at=now,
                    payload={},
                )
            )
        assert await outbox.claim_destinations(now, LEASE, 10, owner="w") == [dest]
        assert await outbox.renew(dest, now + LEASE, "w")
        await handle_pause(ChatStore(store.engine), "pause")
        assert not await outbox.renew(dest, now + LEASE, "w")  # the worker stops sending there
        assert await outbox.claim_destinations(now + 2 * LEASE, LEASE, 10, owner="w") == []
        async with store.sessions() as session:
            status = await session.scalar(select(m.Delivery.status))
        assert status == "dropped"
    finally:
        await store.engine.dispose()


# ---------------------------------------------------------------------------------------- migration
async def test_migration_0010_down_and_up_keeps_the_routing_triggers(database_url: str) -> None:
    from alembic import command as alembic_command
    from sqlalchemy import text
    from sqlalchemy.engine import Connection

    from bot.store.db import alembic_config, create_engine, migrate

    def downgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        alembic_command.downgrade(cfg, "0009")

    async def bumps(sql: str) -> bool:
        async with engine.begin() as conn:
            before = await conn.scalar(text("SELECT version FROM routing_version"))
            await conn.execute(text(sql))
            return bool(await conn.scalar(text("SELECT version FROM routing_version")) != before)

    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO destinations (platform, workspace_id, channel_id, name, timezone, digest_time, "
                    "digest_frequency, digest_weekday, alert_cap_per_hour, quiet_day_notice, "
                    "repeat_alerted_in_digest, active, created_at) VALUES ('slack', 'T1', 'C1', '', 'UTC', "
                    "'08:00', 'daily', 'mon', 5, false, false, true, CURRENT_TIMESTAMP)"
                )
            )
        assert await bumps("UPDATE destinations SET paused_at = CURRENT_TIMESTAMP")
        assert not await bumps("UPDATE destinations SET paused_by = 'x'")  # routing does not read it
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await bumps("UPDATE destinations SET active = false")
        async with engine.connect() as conn:
            with pytest.raises(Exception, match="paused_at"):
                await conn.execute(text("SELECT paused_at FROM destinations"))
        await migrate(engine)
        assert await bumps("UPDATE destinations SET paused_at = NULL")
    finally:
        await engine.dispose()


async def test_a_pause_waits_for_routing_under_way(database_url: str) -> None:
    """A routing transaction may be queueing an alert for the channel right now; the pause waits
    for it (and then drops what it queued), so nothing slips in after the pause."""
    store = await open_store(database_url)
    chat = ChatStore(store.engine)
    try:
        await add_destination(store, "slack", "C1", workspace_id="T1")
        async with store.sessions.begin() as routing:
            await lock_routing(routing)
            pausing = asyncio.create_task(handle_pause(chat, "pause"))
            await asyncio.sleep(1.0)
            assert not pausing.done()  # held by the routing transaction
        await asyncio.wait_for(pausing, 30)
    finally:
        await store.engine.dispose()
