"""Alerts, digests and follow-ups through the real discord.py and slack_sdk clients, against the
local Discord and Slack stand-ins (spec-validated bodies, rate limits, outages, gone channels)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.delivery.services import Delivery
from bot.store import models as m
from bot.store.outbox import Outbox
from bot.store.repo import Store
from tests.support.discord_api import DiscordAPI
from tests.support.newsdb import (
    add_destination,
    add_story,
    build_delivery,
    deliveries,
    destination,
    open_store,
)
from tests.support.slack_api import SlackAPI

pytestmark = pytest.mark.usefixtures("restore_discord_base")

TOPICS = ("distillation", "ip", "natsec", "release")
DCH = "300000000000000001"
LONG = (
    "The Commerce Department said the rule closes loopholes that let restricted buyers obtain advanced "
    "accelerators through subsidiaries abroad. Officials expect further measures on model weights later "
    "this year, and several companies said they were reviewing the text with counsel."
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    yield s
    await s.engine.dispose()


@pytest.fixture
async def discord_api(shared_dir: Path) -> AsyncIterator[DiscordAPI]:
    async with DiscordAPI(shared=shared_dir) as api:
        yield api


@pytest.fixture
async def slack_api(shared_dir: Path) -> AsyncIterator[SlackAPI]:
    async with SlackAPI(shared=shared_dir) as api:
        yield api


def make(store: Store, discord: DiscordAPI | None, slack: SlackAPI | None, **over: Any) -> Delivery:
    values: dict[str, Any] = {}
    if discord is not None:
        values.update(DISCORD_TOKEN="test-token", discord_api_base=discord.api_base)
    if slack is not None:
        values.update(SLACK_BOT_TOKEN="xoxb-test", slack_api_base=slack.api_base)
    values.update(over)
    delivery: Delivery = build_delivery(store, TOPICS, **values)
    return delivery


async def many_stories(store: Store, n: int, topic_cycle: tuple[str, ...] = TOPICS) -> list[Any]:
    out = []
    for i in range(n):
        topic = topic_cycle[i % len(topic_cycle)]
        out.append(
            await add_story(
                store,
                f"Story {i:03d}: a long enough headline about {topic} that keeps going for a while",
                topics={topic: 0.55 + (i % 7) / 20},
                summary=LONG,
                outlet=("Reuters", "FT", "Axios", "Bloomberg")[i % 4],
            )
        )
    return out


async def plan_now(delivery: Delivery, dest: int) -> Any:
    now = datetime.now(UTC)
    return await delivery.digests.plan(dest, fire=now, now=now, advance=False)


def discord_titles(api: DiscordAPI, channel: str) -> list[str]:
    return [e["title"] for msg in api.posted(channel) for e in msg["embeds"]]


def slack_entries(api: SlackAPI, channel: str) -> list[str]:
    out = []
    for msg in api.messages.get(channel, []):
        for block in msg["blocks"]:
            text = (block.get("text") or {}).get("text", "")
            if block["type"] == "section" and text.startswith("*<"):
                out.append(text.split("|", 1)[1].split(">", 1)[0])
    return out


async def test_discord_digest_splits_within_limits_in_order(store: Store, discord_api: DiscordAPI) -> None:
    dest = await add_destination(store, "discord", DCH, [(t, "digest", 0.0) for t in TOPICS])
    stories = await many_stories(store, 27)
    delivery = make(store, discord_api, None)
    planned = await plan_now(delivery, dest)
    assert planned.entries == 27 and planned.parts >= 3
    await delivery.worker.drain(within=30)
    await delivery.worker.stop()
    messages = discord_api.posted(DCH)
    assert len(messages) == planned.parts
    assert discord_api.spec_errors == []
    titles = discord_titles(discord_api, DCH)
    assert sorted(titles) == sorted(s.title for s in stories)  # every entry exactly once, nothing cut
    assert all(len(m["embeds"]) <= 10 for m in messages)
    assert "(1/" in messages[0]["content"] and f"({planned.parts}/{planned.parts})" in messages[-1]["content"]
    sends = discord_api.calls("POST", f"/api/v10/channels/{DCH}/messages")
    assert all(c.body["enforce_nonce"] is True and len(c.body["nonce"]) <= 25 for c in sends)
    assert len({c.body["nonce"] for c in sends}) == len(sends)
    rows = await deliveries(store, kind="digest")
    assert {r.status for r in rows} == {"sent"} and all(r.platform_message_id for r in rows)
    # Grouped by topic in taxonomy order, the topic named on its first embed.
    order = [TOPICS.index(t.split("about ")[1].split(" that")[0]) for t in titles]
    assert order == sorted(order)


async def test_slack_digest_splits_with_metadata(store: Store, slack_api: SlackAPI) -> None:
    dest = await add_destination(store, "slack", "C1", [(t, "digest", 0.0) for t in TOPICS])
    stories = await many_stories(store, 60)
    delivery = make(store, None, slack_api)
    planned = await plan_now(delivery, dest)
    assert planned.parts >= 2
    await delivery.worker.drain(within=60)
    await delivery.worker.stop()
    messages = slack_api.messages["C1"]
    assert len(messages) == planned.parts and slack_api.spec_errors == []
    assert all(len(msg["blocks"]) <= 50 for msg in messages)
    assert sorted(slack_entries(slack_api, "C1")) == sorted(s.title for s in stories)
    rows = await deliveries(store, kind="digest")
    leads = {r.payload["part"]: r.id for r in sorted(rows, key=lambda r: -r.id)}
    assert [msg["metadata"]["event_payload"]["delivery_id"] for msg in messages] == [
        leads[p] for p in range(1, planned.parts + 1)
    ]
    assert messages[0]["metadata"]["event_type"] == "frontierwatch_delivery"


async def test_alerts_reach_both_platforms_and_follow_ups_go_in_threads(
    store: Store, discord_api: DiscordAPI, slack_api: SlackAPI
) -> None:
    d = await add_destination(store, "discord", DCH, [("natsec", "both", 0.0)])
    s = await add_destination(store, "slack", "C1", [("natsec", "both", 0.0)])
    delivery = make(store, discord_api, slack_api)
    first = await add_story(
        store, "US adds AI chip makers to Entity List", topics={"natsec": 0.9}, summary=LONG
    )
    await delivery.router.route([first])
    await delivery.worker.drain(within=20)
    assert len(discord_api.posted(DCH)) == 1 and len(slack_api.messages["C1"]) == 1
    alert_ts = slack_api.messages["C1"][0]["ts"]
    # Two more outlets: one follow-up per channel, as a reply, never a new top-level alert.
    more = [
        await add_story(
            store, "Entity List grows", topics={"natsec": 0.9}, outlet=o, cluster_id=first.cluster_id
        )
        for o in ("FT", "Axios")
    ]
    await delivery.router.route(more[:1])
    await delivery.worker.drain(within=20)
    await delivery.router.route(more[1:])  # within the hour: waits for the next round
    await delivery.worker.drain(within=5)
    threads = discord_api.calls("POST", f"/api/v10/channels/{DCH}/messages/")
    assert len(threads) == 1 and threads[0].path.endswith("/threads")
    thread_posts = [ch for ch in discord_api.messages if ch != DCH]
    assert (
        len(thread_posts) == 1 and "Also covered by FT" in discord_api.messages[thread_posts[0]][0]["content"]
    )
    replies = [msg for msg in slack_api.messages["C1"] if msg.get("thread_ts") == alert_ts]
    assert len(replies) == 1 and "FT" in replies[0]["text"]
    assert len(discord_api.posted(DCH)) == 1  # still one top-level message
    rows = await deliveries(store, kind="followup")
    assert sorted(r.status for r in rows) == ["pending", "pending"]
    assert all(r.next_attempt_at > datetime.now(UTC) + timedelta(minutes=50) for r in rows)
    # An hour later the second round goes into the same thread (no new thread is created).
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Delivery).where(m.Delivery.kind == "followup").values(next_attempt_at=datetime.now(UTC))
        )
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    assert len(discord_api.calls("POST", f"/api/v10/channels/{DCH}/messages/")) == 1
    assert "Axios" in discord_api.messages[thread_posts[0]][1]["content"]
    assert [msg["text"] for msg in slack_api.messages["C1"] if msg.get("thread_ts") == alert_ts][
        1
    ].startswith("Also covered by Axios")
    assert discord_api.spec_errors == [] and slack_api.spec_errors == []
    assert {r.destination_id for r in await deliveries(store, kind="alert")} == {d, s}


async def test_rate_limits_and_outages_are_retried_without_duplicates(
    store: Store, shared_dir: Path, slack_api: SlackAPI
) -> None:
    async with DiscordAPI(
        shared=shared_dir, channel_limit=1, channel_window=2.0, report_headers=False
    ) as api:
        dest = await add_destination(store, "discord", DCH, [(t, "digest", 0.0) for t in TOPICS])
        sdest = await add_destination(store, "slack", "C9", [(t, "digest", 0.0) for t in TOPICS])
        await many_stories(store, 40)
        delivery = make(store, api, slack_api)
        api.outage_status = 503
        slack_api.outage_status = 503
        await plan_now(delivery, dest)
        await plan_now(delivery, sdest)
        await delivery.worker.run_once()
        assert api.posted(DCH) == [] and slack_api.messages.get("C9", []) == []
        rows = await deliveries(store, kind="digest")
        assert {r.status for r in rows} == {"pending"} and all(
            r.attempts == 1 for r in rows if r.payload["part"] == 1
        )
        assert all("503" in (r.error or "") for r in rows if r.payload["part"] == 1)
        api.outage_status = None
        slack_api.outage_status = None
        api.fail_next = 1  # one more 500 on the way: discord.py retries it itself
        await delivery.worker.drain(within=60)
        await delivery.worker.stop()
        assert api.rate_limited > 0  # the 1-per-2s bucket was hit and honoured
        assert len(discord_titles(api, DCH)) == 40 == len(set(discord_titles(api, DCH)))
        assert len(slack_entries(slack_api, "C9")) == 40 == len(set(slack_entries(slack_api, "C9")))
        assert api.spec_errors == [] and slack_api.spec_errors == []


@pytest.mark.parametrize(
    ("platform", "setup", "reason"),
    [
        ("discord", lambda d, s: d.gone_channels.add(DCH), "Unknown Channel (10003)"),
        ("discord", lambda d, s: d.forbidden_channels.add(DCH), "Missing Access (50001)"),
        ("slack", lambda d, s: s.gone_channels.update(C1="channel_not_found"), "channel_not_found"),
        ("slack", lambda d, s: s.gone_channels.update(C1="is_archived"), "is_archived"),
        ("slack", lambda d, s: s.gone_channels.update(C1="not_in_channel"), "not_in_channel"),
        ("slack", lambda d, s: s.gone_channels.update(C1="invalid_auth"), "invalid_auth"),
        ("slack", lambda d, s: s.gone_channels.update(C1="account_inactive"), "account_inactive"),
        ("discord_webhook", lambda d, s: d.revoked_webhooks.add(f"400000000000000001/{'t' * 68}"), "10015"),
        ("slack_webhook", lambda d, s: s.revoked_webhooks.add("T1/B1/secret"), "no_service"),
    ],
)
async def test_gone_destination_is_marked_inactive_with_reason(
    store: Store, discord_api: DiscordAPI, slack_api: SlackAPI, platform: str, setup: Any, reason: str
) -> None:
    webhook = {
        "discord_webhook": f"https://discord.com/api/webhooks/400000000000000001/{'t' * 68}",
        "slack_webhook": slack_api.webhook_url("T1/B1/secret"),
    }.get(platform)
    channel = DCH if platform.startswith("discord") else "C1"
    dest = await add_destination(store, platform, channel, webhook_url=webhook)
    other = await add_destination(store, "slack", "C2")
    setup(discord_api, slack_api)
    delivery = make(store, discord_api, slack_api)
    await delivery.router.route([await add_story(store, "Export controls tighten", topics={"natsec": 0.9})])
    await delivery.router.route([await add_story(store, "More export controls", topics={"natsec": 0.9})])
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    row = await destination(store, dest)
    assert not row.active and reason in (row.inactive_reason or "")
    rows = await deliveries(store, destination_id=dest)
    assert {r.status for r in rows} == {"failed"} and all(
        "destination inactive" in (r.error or "") for r in rows
    )
    assert (await destination(store, other)).active and len(slack_api.messages["C2"]) == 2


async def test_webhooks_deliver_alerts_and_digests(
    store: Store, discord_api: DiscordAPI, slack_api: SlackAPI
) -> None:
    dw = await add_destination(
        store,
        "discord_webhook",
        "hook1",
        webhook_url=f"https://discord.com/api/webhooks/400000000000000002/{'k' * 68}",
    )
    sw = await add_destination(store, "slack_webhook", "hook2", webhook_url=slack_api.webhook_url("T1/B2/s2"))
    delivery = make(store, None, None, discord_api_base=discord_api.api_base)  # webhooks need no bot token
    await delivery.router.route([await add_story(store, "Export controls tighten", topics={"natsec": 0.9})])
    await many_stories(store, 12, ("natsec",))
    await plan_now(delivery, dw)
    await plan_now(delivery, sw)
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    posted = discord_api.posted("webhook-400000000000000002")
    assert len(posted) >= 3 and posted[0]["embeds"][0]["title"] == "Export controls tighten"
    assert sum(len(p["embeds"]) for p in posted[1:]) == 12
    assert len(slack_api.webhook_posts["T1/B2/s2"]) >= 2
    assert discord_api.spec_errors == [] and slack_api.spec_errors == []
    rows = await deliveries(store)
    assert {r.status for r in rows} == {"sent"}


async def test_ambiguous_sends_are_reconciled_not_repeated(
    store: Store, discord_api: DiscordAPI, slack_api: SlackAPI
) -> None:
    d = await add_destination(store, "discord", DCH)
    s = await add_destination(store, "slack", "C1")
    delivery = make(store, discord_api, slack_api)
    await delivery.router.route([await add_story(store, "Export controls tighten", topics={"natsec": 0.9})])
    await delivery.worker.drain(within=20)
    assert len(discord_api.posted(DCH)) == 1 and len(slack_api.messages["C1"]) == 1
    # Pretend the process died after posting, before recording: the rows are "sending" again.
    async with store.sessions.begin() as session:
        await session.execute(update(m.Delivery).values(status="sending", platform_message_id=None))
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    assert len(discord_api.posted(DCH)) == 1  # the same nonce returned the first message
    assert len(slack_api.messages["C1"]) == 1  # found in history by its delivery id
    assert slack_api.method_calls("conversations.history")
    rows = await deliveries(store)
    by_dest = {r.destination_id: r for r in rows}
    assert by_dest[d].platform_message_id == discord_api.posted(DCH)[0]["id"]
    assert by_dest[s].platform_message_id == slack_api.messages["C1"][0]["ts"]
    # Not found in history → it really was not posted → post it now (once).
    slack_api.messages["C1"].clear()
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Delivery).where(m.Delivery.destination_id == s).values(status="sending")
        )
    delivery2 = make(store, discord_api, slack_api)
    await delivery2.worker.drain(within=20)
    await delivery2.worker.stop()
    assert len(slack_api.messages["C1"]) == 1


async def test_outbox_claims_each_destination_once_across_workers(store: Store) -> None:
    for i in range(30):
        await add_destination(store, "console", f"c{i}")
    await delivery_rows(store)
    a, b = Outbox(store), Outbox(store)
    now = datetime.now(UTC)
    first = await a.claim_destinations(now, timedelta(minutes=1), 100)
    second = await b.claim_destinations(now, timedelta(minutes=1), 100)
    assert len(first) == 30 and second == []
    later = now + timedelta(minutes=2)  # a crashed worker's lease expires
    assert len(await b.claim_destinations(later, timedelta(minutes=1), 100)) == 30


async def test_a_channel_lease_is_renewed_and_released_only_by_its_owner(store: Store) -> None:
    """A worker that stalled past its lease must neither free nor extend the channel that another
    replica has taken over since: it learns it lost the channel and stops sending there."""
    await add_destination(store, "console", "c0")
    await delivery_rows(store)
    outbox = Outbox(store)
    now = datetime.now(UTC)
    [dest] = await outbox.claim_destinations(now, timedelta(seconds=30), 10, owner="slow")
    later = now + timedelta(minutes=1)  # "slow" stalled; its lease lapsed and "fast" took over
    assert await outbox.claim_destinations(later, timedelta(minutes=5), 10, owner="fast") == [dest]
    assert not await outbox.renew(dest, later + timedelta(minutes=5), "slow")
    await outbox.release(dest, "slow")  # a late release by the old owner changes nothing
    assert await outbox.claim_destinations(later, timedelta(minutes=5), 10, owner="third") == []
    assert await outbox.renew(dest, later + timedelta(minutes=5), "fast")
    await outbox.release(dest, "fast")
    assert await outbox.claim_destinations(later, timedelta(minutes=5), 10, owner="third") == [dest]


async def test_the_worker_claims_only_the_channels_it_serves_at_once(store: Store) -> None:
    """Claimed channels waiting unserved would lose their leases to another replica mid-send."""
    for i in range(10):
        await add_destination(store, "console", f"c{i}")
    await delivery_rows(store)
    seen: list[int] = []
    delivery = make(store, None, None, delivery_concurrency=3)
    original = delivery.worker.outbox.claim_destinations

    async def spy(now: datetime, lease: timedelta, limit: int, owner: str | None = None) -> list[int]:
        seen.append(limit)
        claimed = await original(now, lease, limit, owner)
        assert owner == delivery.worker.owner and len(claimed) == 3
        return claimed

    delivery.worker.outbox.claim_destinations = spy  # type: ignore[method-assign]
    await delivery.worker.run_once()
    assert seen == [3]


async def delivery_rows(store: Store) -> None:
    story = await add_story(store, "Export controls", topics={"natsec": 0.9})
    delivery = make(store, None, None)
    await delivery.router.route([story])


async def test_slack_workspaces_installed_through_oauth_use_their_own_bot_token(
    store: Store, slack_api: SlackAPI
) -> None:
    from slack_sdk.oauth.installation_store import Installation
    from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

    installed = AsyncSQLAlchemyInstallationStore(client_id="cid", engine=store.engine)
    await installed.async_save(
        Installation(
            app_id="A1",
            team_id="T2",
            bot_token="xoxb-installed-t2",
            bot_id="B2",
            bot_user_id="U2",
            user_id="U9",
        )
    )
    ours = await add_destination(store, "slack", "C-T2", [("natsec", "both", 0.0)], workspace_id="T2")
    home = await add_destination(store, "slack", "C-HOME", [("natsec", "both", 0.0)], workspace_id="T1")
    delivery = make(
        store, None, slack_api, SLACK_BOT_TOKEN=None, SLACK_CLIENT_ID="cid", SLACK_CLIENT_SECRET="secret"
    )
    story = await add_story(store, "US adds AI chip makers to Entity List", topics={"natsec": 0.9})
    await delivery.router.route([story])
    await delivery.worker.drain(within=20)
    await delivery.worker.stop()
    posts = slack_api.method_calls("chat.postMessage")
    assert [(c.body["channel"], c.authorization) for c in posts] == [("C-T2", "Bearer xoxb-installed-t2")]
    # A workspace with no installation (and no SLACK_BOT_TOKEN) is gone for us: marked, not retried.
    async with store.sessions() as session:
        home_row = await session.get(m.Destination, home)
        ours_row = await session.get(m.Destination, ours)
    assert (
        home_row is not None and not home_row.active and "not installed" in (home_row.inactive_reason or "")
    )
    assert ours_row is not None and ours_row.active


async def test_a_slow_discord_never_gets_a_second_copy_after_its_nonce_window(
    store: Store, discord_api: DiscordAPI
) -> None:
    """Every send reaches Discord but its answer never comes back in time; the retry comes after
    Discord has forgotten the nonce. The worker must find its own messages, not post them again."""
    await add_destination(store, "discord", DCH)
    discord_api.nonce_window = 0.2  # Discord's "few minutes", shortened
    discord_api.hold_responses = asyncio.Event()
    delivery = make(store, discord_api, None, delivery_timeout_seconds=0.5, delivery_max_backoff_seconds=1.0)
    stories = [await add_story(store, f"Export controls story {i}", topics={"natsec": 0.9}) for i in range(5)]
    await delivery.router.route(stories)
    try:
        await delivery.worker.drain(within=30)
    finally:
        discord_api.hold_responses.set()
        discord_api.hold_responses = None
    await delivery.worker.drain(within=30)  # Discord answers again: whatever is left goes out once
    await delivery.worker.stop()
    posted = discord_api.posted(DCH)
    assert len(posted) == 5, [e["title"] for m in posted for e in m["embeds"]]  # 5: the hourly alert cap
    assert discord_api.calls("GET", f"/api/v10/channels/{DCH}/messages")  # looked before resending
    rows = await deliveries(store)
    assert {r.status for r in rows} == {"sent"}
    assert sorted(r.platform_message_id for r in rows) == sorted(m["id"] for m in posted)
    for message in posted:  # the marker that made them findable, validated against the spec
        assert message["embeds"][-1]["footer"]["text"].startswith("ref fw")
    assert discord_api.spec_errors == []
