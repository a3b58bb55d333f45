"""Digest selection, ranking, rendering within platform limits, the clock, and the CLI preview."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.delivery.bodies import discord_wire, paginate, slack_wire
from bot.delivery.digests import DigestService
from bot.digest import discord_render, slack_render
from bot.digest.common import DigestHeader
from bot.digest.entries import DigestEntry, Selection, TopicRule, select_entries
from bot.digest.text import text_digest
from bot.settings import Settings
from bot.store import models as m
from bot.store.outbox import Outbox
from bot.store.repo import Store
from bot.timetable import ScheduleError, next_digest_at
from tests.support.newsdb import add_destination, add_story, destination, open_store
from tests.support.specs import block_kit_errors, discord_request_errors

TOPICS = ("distillation", "ip", "natsec", "release")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.engine.dispose()


def entry(
    i: int, topic: str = "natsec", *, title_len: int = 80, summary_len: int = 280, **kw: Any
) -> DigestEntry:
    return DigestEntry(
        cluster_id=i,
        story_id=i,
        title=(f"Headline {i} " + "x" * title_len)[:title_len],
        url=f"https://news.example/{i}",
        outlets=("Reuters", "FT", "Axios", "Bloomberg", "AP", "WSJ"),
        published_at=NOW - timedelta(hours=i % 30),
        topic=topic,
        topics={topic: 0.8},
        reason=f"{topic} (export controls, entity list)",
        summary=("Sentence one about it. " * 40)[:summary_len],
        **kw,
    )


# ------------------------------------------------------------------------------- schedule
def test_daily_digest_follows_local_time_across_dst() -> None:
    def nxt(tz: str, hhmm: str, after: datetime, freq: str = "daily", day: str = "mon") -> datetime | None:
        return next_digest_at(tz, hhmm, freq, day, after=after)

    # Berlin 08:00: 07:00 UTC in winter, 06:00 UTC from the spring-forward day on.
    assert nxt("Europe/Berlin", "08:00", datetime(2026, 3, 28, 7, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    assert nxt("Europe/Berlin", "08:00", datetime(2026, 3, 27, 12, tzinfo=UTC)) == datetime(
        2026, 3, 28, 7, 0, tzinfo=UTC
    )
    # New York 01:30 happens twice on the fall-back night: one digest, at the first.
    first = nxt("America/New_York", "01:30", datetime(2026, 10, 31, 12, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert nxt("America/New_York", "01:30", first) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    # 02:30 does not exist on the spring-forward day: it still fires that day, just after.
    spring = nxt("America/New_York", "02:30", datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert spring is not None and spring.date() == datetime(2026, 3, 8).date()
    # Weekly, in Tokyo: Friday 08:00 JST is Thursday 23:00 UTC.
    assert nxt("Asia/Tokyo", "08:00", NOW, "weekly", "fri") == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    assert nxt("UTC", "08:00", NOW, "off") is None
    with pytest.raises(ScheduleError):
        nxt("Mars/Olympus", "08:00", NOW)
    with pytest.raises(ScheduleError):
        nxt("UTC", "25:00", NOW)


async def test_due_digests_are_claimed_once_across_replicas(store: Store, database_url: str) -> None:
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)
    ids = [
        await add_destination(
            store, "console", f"c{i}", next_digest_at=now - timedelta(minutes=1), timezone="Europe/Paris"
        )
        for i in range(12)
    ]
    await add_story(
        store,
        "US adds AI labs to the Entity List",
        topics={"natsec": 0.7},
        first_seen=now - timedelta(hours=1),
    )
    replicas = [DigestService(Outbox(store), settings, TOPICS) for _ in range(4)]
    results = await asyncio.gather(*(r.tick(now) for r in replicas))
    planned = [p.destination_id for result in results for p in result]
    assert sorted(planned) == sorted(ids)  # each due digest planned by exactly one replica
    async with store.sessions() as session:
        rows = (await session.scalars(select(m.Delivery).where(m.Delivery.kind == "digest"))).all()
    assert sorted(r.destination_id for r in rows) == sorted(ids)
    for dest_id in ids:
        row = await destination(store, dest_id)
        assert row.next_digest_at is not None and row.next_digest_at > now and row.digest_lease_until is None
    assert all(r == [] for r in await asyncio.gather(*(r.tick(now) for r in replicas)))


async def test_one_tick_plans_every_due_digest_each_with_its_own_rules(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More channels due than one claim takes (100): all planned in the same tick, each by its
    own rules although their rules are read together; one channel whose rows cannot be written
    does not stop the others."""
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    await add_story(
        store,
        "US adds AI labs to the Entity List",
        topics={"natsec": 0.7},
        first_seen=now - timedelta(hours=1),
    )
    plain = [await add_destination(store, "console", f"c{i}", next_digest_at=due) for i in range(230)]
    excluding = await add_destination(store, "console", "x", exclude=["entity list"], next_digest_at=due)
    other_topic = await add_destination(store, "console", "r", [("release", "both", 0.0)], next_digest_at=due)
    broken = await add_destination(store, "console", "b", next_digest_at=due)
    outbox = Outbox(store)
    enqueue = outbox.enqueue

    async def failing_for_one(session: Any, rows: list[dict[str, Any]]) -> list[int]:
        if any(r["destination_id"] == broken for r in rows):
            raise ValueError("a row this database refuses")
        return await enqueue(session, rows)

    monkeypatch.setattr(outbox, "enqueue", failing_for_one)
    planned = {p.destination_id: p.entries for p in await DigestService(outbox, settings, TOPICS).tick(now)}
    assert planned == {**{d: 1 for d in plain}, excluding: 0, other_topic: 0}
    left = await destination(store, broken)
    assert left.next_digest_at == due and left.digest_lease_until is not None  # retried when it lapses


async def test_a_failed_batch_is_planned_again_one_by_one_from_fresh_reads(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch that first read the window's stories fails: its rollback must not leave the
    one-by-one retry with stories it can no longer read."""
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)
    await add_story(
        store,
        "US adds AI labs to the Entity List",
        topics={"natsec": 0.7},
        first_seen=now - timedelta(hours=1),
    )
    broken = await add_destination(store, "console", "b", next_digest_at=now - timedelta(minutes=5))
    others = [
        await add_destination(store, "console", f"c{i}", next_digest_at=now - timedelta(minutes=1))
        for i in range(3)
    ]
    outbox = Outbox(store)
    enqueue = outbox.enqueue

    async def failing_for_one(session: Any, rows: list[dict[str, Any]]) -> list[int]:
        if any(r["destination_id"] == broken for r in rows):
            raise ValueError("a row this database refuses")
        return await enqueue(session, rows)

    monkeypatch.setattr(outbox, "enqueue", failing_for_one)
    planned = {p.destination_id: p.entries for p in await DigestService(outbox, settings, TOPICS).tick(now)}
    assert planned == {d: 1 for d in others}


# ------------------------------------------------------------------------------- selection
async def test_selection_one_entry_per_cluster_ranked_and_grouped(store: Store) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(days=1)
    a = await add_story(
        store, "Lab accused of distilling rival model", topics={"distillation": 0.6}, outlet="Reuters"
    )
    await add_story(
        store, "Distillation row deepens", topics={"distillation": 0.9}, outlet="FT", cluster_id=a.cluster_id
    )
    await add_story(
        store, "Another one", topics={"distillation": 0.9}, outlet="Axios", cluster_id=a.cluster_id
    )
    b = await add_story(store, "Weak distillation mention", topics={"distillation": 0.55}, outlet="Blog")
    c = await add_story(
        store, "Export controls expanded", topics={"natsec": 0.7}, summary="First. Second. Third."
    )
    await add_story(
        store, "Old backlog item", topics={"natsec": 0.9}, backlog=True, published=now - timedelta(days=5)
    )
    await add_story(
        store, "Seen before the window", topics={"natsec": 0.9}, first_seen=now - timedelta(days=2)
    )
    await add_story(store, "Below threshold", topics={"natsec": 0.3})
    rules = [TopicRule(t) for t in TOPICS]
    now = datetime.now(UTC)  # the digest runs after the stories arrived
    async with store.sessions() as session:
        got = await select_entries(session, Selection(since, now, rules), TOPICS)
    assert [(e.cluster_id, e.topic) for e in got] == [
        (a.cluster_id, "distillation"),
        (b.cluster_id, "distillation"),
        (c.cluster_id, "natsec"),
    ]
    first = got[0]
    assert first.title == "Lab accused of distilling rival model" and first.outlets == (
        "Reuters",
        "FT",
        "Axios",
    )
    assert first.topics == {"distillation": 0.9}  # the cluster's best score
    assert got[2].summary == "First. Second."  # one or two sentences
    text = text_digest(DigestHeader("Frontier Watch digest", now, "Sat 28 Nov 2026", len(got)), got)
    assert "Reuters · also: FT, Axios" in text and "why: distillation (distillation-term)" in text
    # A channel's own minimum score and keywords.
    async with store.sessions() as session:
        strict = await select_entries(
            session, Selection(since, now, [TopicRule("distillation", "both", 0.8)]), TOPICS
        )
        assert [e.cluster_id for e in strict] == [a.cluster_id]
        alerts_only = await select_entries(
            session, Selection(since, now, [TopicRule("natsec", "alerts")]), TOPICS
        )
        assert alerts_only == []


async def test_alerted_story_is_not_repeated_unless_asked(store: Store, database_url: str) -> None:
    settings = Settings(database_url=database_url)
    dest = await add_destination(store, "console", "d", [("natsec", "both", 0.0)], quiet_day_notice=True)
    again = await add_destination(
        store, "console", "r", [("natsec", "both", 0.0)], repeat_alerted_in_digest=True
    )
    silent = await add_destination(store, "console", "s", [("natsec", "both", 0.0)])
    story = await add_story(store, "Export controls expanded", topics={"natsec": 0.9})
    from bot.delivery.router import Router

    await Router(Outbox(store), settings).route([story])
    service = DigestService(Outbox(store), settings, TOPICS)
    now = datetime.now(UTC)
    plans = {d: await service.plan(d, fire=now, now=now, advance=False) for d in (dest, again, silent)}
    assert plans[dest] is not None and plans[dest].entries == 0 and plans[dest].quiet
    assert plans[again] is not None and plans[again].entries == 1
    assert plans[silent] is not None and plans[silent].entries == 0 and not plans[silent].quiet
    async with store.sessions() as session:
        kinds = (await session.execute(select(m.Delivery.destination_id, m.Delivery.kind))).all()
    assert sorted(kinds) == sorted(
        [(dest, "alert"), (again, "alert"), (silent, "alert"), (dest, "quiet"), (again, "digest")]
    )


# ------------------------------------------------------------------------------- limits
def test_discord_pages_respect_embed_count_and_6000_total(shared_dir: Path) -> None:
    entries = [entry(i, TOPICS[i % 4], title_len=256, summary_len=600) for i in range(37)]
    header = DigestHeader(
        "Frontier Watch digest", NOW, "Sat 28 Nov 2026", len(entries), overflow=2, alert_cap=5
    )
    pages = discord_render.paginate(header, entries)
    assert [e for page in pages for e in page] == entries  # all, in order: split, never cut
    for part, page in enumerate(pages, start=1):
        body = discord_wire(discord_render.digest_body(header, page, part, len(pages)), nonce="fw1")
        assert len(body["embeds"]) <= 10
        assert sum(discord_render.embed_chars(e) for e in body["embeds"]) <= 6000
        assert discord_request_errors(shared_dir, "POST", "/api/v10/channels/1/messages", body) == []
    assert len(pages) >= 5  # 37 long entries cannot fit in 4 messages of ≤ 6000 characters


def test_slack_pages_respect_blocks_and_size() -> None:
    entries = [entry(i, TOPICS[i // 30], title_len=300, summary_len=600) for i in range(120)]
    header = DigestHeader("Frontier Watch digest " + "y" * 150, NOW, "Sat 28 Nov 2026", len(entries))
    pages = slack_render.paginate(header, entries)
    assert [e for page in pages for e in page] == entries
    previous = None
    for part, page in enumerate(pages, start=1):
        body = slack_render.digest_body(header, page, part, len(pages), previous_topic=previous)
        previous = page[-1].topic
        assert block_kit_errors(body["blocks"]) == []
        assert len(body["blocks"]) <= 50
        assert len(json.dumps(body["blocks"])) < 16_000
        assert sum(len(b.get("text", {}).get("text", "")) for b in body["blocks"]) <= 10_000
    assert len(pages) >= 3


def test_single_fields_are_clipped_visibly_and_escaped() -> None:
    long = entry(1, title_len=400)
    body = discord_render.digest_body(DigestHeader("T", NOW, "d", 1), [long], 1, 1)
    assert len(body["embeds"][0]["title"]) <= 256 and body["embeds"][0]["title"].endswith("…")
    hostile = DigestEntry(
        2, 2, "A <b>&| title", "https://x.example/a|b>c", ("R",), NOW, "ip", {"ip": 0.7}, "ip", ""
    )
    block = slack_render.entry_block(hostile, NOW)
    assert block["text"]["text"].startswith("*<https://x.example/a%7Cb%3Ec|A &lt;b&gt;&amp;∣ title>*")


# ------------------------------------------------------------------------------- CLI
def test_cli_preview_prints_exact_bodies(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.sqlite3'}"

    async def seed() -> None:
        s = await open_store(url)
        for i in range(14):
            await add_story(
                s,
                f"Export controls story number {i} " + "z" * 150,
                topics={TOPICS[i % 4]: 0.8},
                summary="A. B. C.",
                first_seen=datetime.now(UTC) - timedelta(minutes=10),
            )
        await s.engine.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("FW_DATABASE_URL", url)
    sources = tmp_path / "sources.toml"
    sources.write_text('[[sources]]\nname = "X"\nurl = "https://x.example/feed"\n')
    monkeypatch.setenv("FW_SOURCES_FILE", str(sources))
    runner = CliRunner()
    text = runner.invoke(main, ["digest", "--preview", "--since", "24h"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("Frontier Watch digest — ") and text.output.count("• Export controls") == 14
    one = runner.invoke(main, ["digest", "--preview", "--topic", "ip"])
    assert one.output.count("• Export controls") == 4  # stories 1, 5, 9, 13
    d = runner.invoke(main, ["digest", "--preview", "--format", "discord-json"])
    bodies = json.loads(d.output)
    assert len(bodies) == 2 and sum(len(b["embeds"]) for b in bodies) == 14
    for body in bodies:
        assert discord_request_errors(shared_dir, "POST", "/api/v10/channels/1/messages", body) == []
    s = runner.invoke(main, ["digest", "--preview", "--format", "slack-json"])
    sbodies = json.loads(s.output)
    assert sbodies[0]["channel"] == "<channel id>" and all(
        block_kit_errors(b["blocks"]) == [] for b in sbodies
    )
    bad = runner.invoke(main, ["digest", "--preview", "--topic", "weather"])
    assert bad.exit_code == 2 and "unknown topic" in bad.output
    empty = runner.invoke(main, ["digest", "--preview", "--since", "5m"])
    assert "nothing relevant" in empty.output


def test_cli_digest_sends_due_digests_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"

    async def seed() -> None:
        s = await open_store(url)
        await add_story(s, "Export controls expanded to cloud access", topics={"natsec": 0.7})
        await s.engine.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("FW_DATABASE_URL", url)
    for var in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    sources = tmp_path / "sources.toml"
    sources.write_text('[[sources]]\nname = "X"\nurl = "https://x.example/feed"\n')
    monkeypatch.setenv("FW_SOURCES_FILE", str(sources))
    monkeypatch.setenv("FW_WEBHOOKS_FILE", str(tmp_path / "none.toml"))
    runner = CliRunner()
    first = runner.invoke(main, ["digest"])
    assert first.exit_code == 0, first.output

    # The console destination is created on first use, its first digest due at its time: force it.
    async def due() -> None:
        s = await open_store(url)
        async with s.sessions.begin() as session:
            for dest in (await session.scalars(select(m.Destination))).all():
                dest.next_digest_at = datetime.now(UTC) - timedelta(minutes=1)
        await s.engine.dispose()

    asyncio.run(due())
    second = runner.invoke(main, ["digest"])
    assert "1 digest(s) due; 1 message(s) sent." in second.output
    assert "Export controls expanded to cloud access" in second.output
    third = runner.invoke(main, ["digest"])
    assert "0 digest(s) due; 0 message(s) sent." in third.output


def test_paginate_for_console_is_one_message() -> None:
    entries = [entry(i) for i in range(80)]
    header = DigestHeader("T", NOW, "d", 80)
    assert paginate("console", header, entries) == [entries]
    assert slack_wire({"text": "t", "blocks": []}, "C1", 7)["metadata"]["event_payload"] == {"delivery_id": 7}
