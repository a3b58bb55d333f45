"""The weekly digest carries the trend chart: on Discord as a message attachment (multipart
``payload_json`` + ``files[0]``, the embed showing ``attachment://trends.png``), on Slack through the
external upload flow (getUploadURLExternal → upload → completeUploadExternal with ``channel_id``),
on the console as a table; daily digests carry none. Through the real discord.py and slack_sdk
clients against the local stand-ins, bodies validated against ../shared/specs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.delivery.bodies import discord_wire, unit_body
from bot.delivery.services import Delivery
from bot.store import models as m
from bot.store.outbox import Row, Unit
from bot.store.repo import Store
from bot.trends.chart import CHART_HEIGHT_PX, CHART_WIDTH_PX
from tests.support.discord_api import DiscordAPI
from tests.support.newsdb import add_destination, add_story, build_delivery, deliveries, open_store
from tests.support.slack_api import SlackAPI
from tests.support.specs import discord_request_errors
from tests.test_trends import png_size

pytestmark = pytest.mark.usefixtures("restore_discord_base")

TOPICS = ("distillation", "ip", "natsec", "release")
DCH, DCH_DAILY = "300000000000000001", "300000000000000002"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    yield s
    await s.engine.dispose()


async def seed(store: Store, n: int = 12) -> None:
    now = datetime.now(UTC)
    for i in range(n):
        topic = ("natsec", "release")[i % 2]
        await add_story(
            store,
            f"Story {i:02d} about {topic} with a long enough headline",
            topics={topic: 0.9},
            summary="The Commerce Department said more rules are coming.",
            published=now - timedelta(days=i * 6, hours=1),
            first_seen=now - timedelta(hours=1),
        )


def make(store: Store, **values: Any) -> Delivery:
    delivery: Delivery = build_delivery(store, TOPICS, **values)
    return delivery


async def due_now(store: Store, *dest_ids: int) -> datetime:
    """Make these destinations' digests due (their scheduled time has come)."""
    now = datetime.now(UTC)
    async with store.sessions.begin() as session:
        await session.execute(
            update(m.Destination)
            .where(m.Destination.id.in_(dest_ids))
            .values(next_digest_at=now - timedelta(minutes=1), last_digest_at=now - timedelta(days=7))
        )
    return now


async def test_discord_weekly_digest_attaches_the_chart_and_daily_does_not(
    store: Store, shared_dir: Path
) -> None:
    await seed(store)
    subs = [("natsec", "digest", 0.0), ("release", "digest", 0.0)]
    weekly = await add_destination(store, "discord", DCH, subs, digest_frequency="weekly")
    daily = await add_destination(store, "discord", DCH_DAILY, subs, digest_frequency="daily")
    async with DiscordAPI(shared=shared_dir) as api:
        delivery = make(store, DISCORD_TOKEN="test-token", discord_api_base=api.api_base)
        await due_now(store, weekly, daily)
        planned = await delivery.digests.tick()
        assert {p.destination_id for p in planned} == {weekly, daily}
        charts = await deliveries(store, kind="chart")
        assert [c.destination_id for c in charts] == [weekly]  # daily digests carry no chart
        assert charts[0].cluster_id < 0 and "series" in charts[0].payload  # data, not the PNG
        await delivery.worker.drain(within=30)
        await delivery.worker.stop()

        assert api.spec_errors == []
        weekly_posts = api.posted(DCH)
        parts = next(p.parts for p in planned if p.destination_id == weekly)
        assert parts == 2 and len(weekly_posts) == parts + 1
        chart_message = weekly_posts[1]  # right after the digest's first message
        assert "(1/2)" in weekly_posts[0]["content"] and "(2/2)" in weekly_posts[2]["content"]
        assert chart_message["embeds"][0]["image"]["url"] == "attachment://trends.png"
        (attachment,) = chart_message["attachments"]
        assert attachment["filename"] == "trends.png" and attachment["content_type"] == "image/png"
        assert (attachment["width"], attachment["height"]) == (CHART_WIDTH_PX, CHART_HEIGHT_PX)

        (upload,) = api.uploads  # one file in all: the daily channel got none
        assert upload.field == "files[0]" and png_size(upload.data) == (CHART_WIDTH_PX, CHART_HEIGHT_PX)
        multipart = [r for r in api.requests if r.files]
        assert len(multipart) == 1 and multipart[0].path == f"/api/v10/channels/{DCH}/messages"
        assert multipart[0].headers["Content-Type"].startswith("multipart/form-data")
        payload = multipart[0].body
        (listed,) = payload["attachments"]
        assert listed["id"] == "0" and listed["filename"] == "trends.png" and listed["description"]
        assert payload["nonce"] and payload["enforce_nonce"] is True
        assert discord_request_errors(shared_dir, "POST", multipart[0].path, payload) == []
        assert all(not msg["attachments"] for msg in api.posted(DCH_DAILY))
        rows = await deliveries(store, kind="chart")
        assert rows[0].status == "sent" and rows[0].platform_message_id == chart_message["id"]


async def test_slack_weekly_digest_uploads_the_chart_into_the_channel(store: Store, shared_dir: Path) -> None:
    await seed(store)
    weekly = await add_destination(store, "slack", "C1", [("natsec", "both", 0.0)], digest_frequency="weekly")
    daily = await add_destination(store, "slack", "C2", [("natsec", "both", 0.0)], digest_frequency="daily")
    async with SlackAPI(shared=shared_dir) as api:
        delivery = make(store, SLACK_BOT_TOKEN="xoxb-test", slack_api_base=api.api_base)
        await due_now(store, weekly, daily)
        await delivery.digests.tick()
        await delivery.worker.drain(within=30)
        await delivery.worker.stop()

        assert api.spec_errors == []
        methods = [c.method for c in api.calls]
        assert methods.count("files.getUploadURLExternal") == 1
        assert methods.count("files.completeUploadExternal") == 1
        get_url = api.method_calls("files.getUploadURLExternal")[0].body
        assert get_url["filename"] == "trends.png" and int(get_url["length"]) > 0
        complete = api.method_calls("files.completeUploadExternal")[0].body
        assert complete["channel_id"] == "C1" and complete["initial_comment"]
        (listed,) = json.loads(complete["files"])
        assert listed["id"] == get_url_file_id(api) and listed["title"].endswith(
            f"ref fw{(await deliveries(store, kind='chart'))[0].id:x}"
        )
        # In the channel: the digest's first message, then the shared chart.
        channel = api.messages["C1"]
        assert "files" not in channel[0] and channel[1]["files"][0]["name"] == "trends.png"
        ((shared, data),) = api.shared_files("C1")
        assert shared["mimetype"] == "image/png"
        assert png_size(data) == (CHART_WIDTH_PX, CHART_HEIGHT_PX) and len(data) == int(get_url["length"])
        assert api.shared_files("C2") == []  # the daily channel: no chart
        assert all("files" not in msg for msg in api.messages["C2"])


def get_url_file_id(api: SlackAPI) -> str:
    return next(iter(api.files))


async def test_an_ambiguous_slack_chart_upload_is_found_not_shared_twice(
    store: Store, shared_dir: Path
) -> None:
    await seed(store, 4)
    weekly = await add_destination(store, "slack", "C1", [("natsec", "both", 0.0)], digest_frequency="weekly")
    async with SlackAPI(shared=shared_dir) as api:
        delivery = make(store, SLACK_BOT_TOKEN="xoxb-test", slack_api_base=api.api_base)
        await due_now(store, weekly)
        await delivery.digests.tick()
        await delivery.worker.drain(within=30)
        (chart,) = await deliveries(store, kind="chart")
        # As if the answer to completeUploadExternal had been lost: the row is "sending" again.
        async with store.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id == chart.id)
                .values(status="sending", platform_message_id=None)
            )
        await delivery.worker.drain(within=30)
        await delivery.worker.stop()
        assert len(api.shared_files("C1")) == 1  # found by its ref marker, not uploaded again
        (chart,) = await deliveries(store, kind="chart")
        assert chart.status == "sent" and chart.platform_message_id == get_url_file_id(api)


async def test_console_weekly_digest_prints_the_chart_as_a_table(store: Store) -> None:
    await seed(store, 6)
    weekly = await add_destination(
        store, "console", "console", [("natsec", "both", 0.0)], digest_frequency="weekly"
    )
    printed: list[str] = []
    from bot.delivery.senders import ConsoleSender

    delivery = make(store)
    delivery.worker.senders["console"] = ConsoleSender(printed.append)
    await due_now(store, weekly)
    await delivery.digests.tick()
    await delivery.worker.drain(within=10)
    await delivery.worker.stop()
    chart_text = [p for p in printed if p.startswith("Frontier Watch trends")]
    assert len(chart_text) == 1 and "natsec" in chart_text[0] and "total 3" in chart_text[0]


def test_the_chart_body_validates_as_a_discord_message() -> None:
    payload = {
        "title": "Frontier Watch trends: events per topic per week",
        "series": {"bucket": "week", "starts": ["2026-03-02", "2026-03-09"], "counts": {"natsec": [1, 2]}},
    }
    row = Row(1, 1, -1, "chart", "pending", "b", 0, payload, None, None, datetime.now(UTC))
    body = unit_body("discord", Unit("chart", (row,)))
    assert isinstance(body, dict) and body["files"][0].data[:8] == b"\x89PNG\r\n\x1a\n"
    wire = discord_wire(body, "fw1")
    assert wire["embeds"][0]["image"] == {"url": "attachment://trends.png"}
    assert wire["attachments"][0]["filename"] == "trends.png"
    console = unit_body("console", Unit("chart", (row,)))
    assert isinstance(console, str) and "natsec" in console and "total 3" in console


async def test_a_discord_channel_without_attach_files_keeps_its_digest(
    store: Store, shared_dir: Path
) -> None:
    await seed(store, 4)
    weekly = await add_destination(
        store, "discord", DCH, [("natsec", "both", 0.0)], digest_frequency="weekly"
    )
    async with DiscordAPI(shared=shared_dir, no_attach_channels={DCH}) as api:
        delivery = make(store, DISCORD_TOKEN="test-token", discord_api_base=api.api_base)
        await due_now(store, weekly)
        await delivery.digests.tick()
        await delivery.worker.drain(within=30)
        await delivery.worker.stop()
        (chart,) = await deliveries(store, kind="chart")
        assert chart.status == "failed" and "Attach Files" in (chart.error or "")
        assert {r.status for r in await deliveries(store, kind="digest")} == {"sent"}
        async with store.sessions() as session:
            dest = await session.get(m.Destination, weekly)
            assert dest is not None and dest.active  # the channel is not marked gone
