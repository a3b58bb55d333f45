"""A real ``frontierwatch run`` process, killed with SIGKILL before, during and after the platform
call while it delivers a digest to the Discord stand-in (which enforces nonces as Discord does)
and to the Slack stand-in; after a restart every entry has arrived exactly once on each. Same for
an outage: all 5xx for a while, then healthy.

"Before" and "after" are hit deterministically by a test hook in the worker (an environment
variable makes the process SIGKILL itself at that point); "during" is the stand-in storing the
message and holding its answer while the test SIGKILLs the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from bot.store.db import create_engine
from tests.support.discord_api import DiscordAPI
from tests.support.feedserver import FeedServer
from tests.support.newsdb import add_destination
from tests.support.slack_api import SlackAPI

REPO = Path(__file__).resolve().parent.parent
DCH, SCH = "300000000000000077", "C0CRASH"
TOPICS = ("distillation", "ip", "natsec", "release")
HEADLINES = [
    "US tightens export controls on Nvidia AI chips bound for China",
    "Anthropic accuses DeepSeek of distilling Claude through fraudulent accounts",
    "OpenAI sues former engineer over stolen model weights and trade secrets",
    "Meta releases Llama 5 open-weight model family",
    "Senate hearing weighs ban on Chinese AI apps over national security risks",
    "Commerce Department adds Chinese AI labs to the Entity List",
    "Google DeepMind unveils Gemini 4 with a two-million-token context window",
    "Authors win copyright ruling against AI startup over training on pirated books",
    "FBI arrests Google engineer accused of stealing AI chip secrets for Chinese firms",
    "Mistral launches new open-source reasoning model",
    "Microsoft says model extraction attacks on its AI services are rising",
    "Pentagon signs deal to deploy frontier AI models on classified networks",
    "Dutch government blocks ASML exports of chipmaking tools to China",
    "Alibaba releases Qwen 4 large language model",
]
SUMMARY = (
    "Officials and companies described the move in statements on Monday. Analysts said the decision "
    "would shape how frontier models are built, sold and protected over the coming year."
)


def rss(now: datetime) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://news.example/{i}</link><guid>g{i}</guid>"
        f"<description>{SUMMARY}</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=10 * (i + 1)))}</pubDate></item>"
        for i, title in enumerate(HEADLINES)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>https://news.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


class Harness:
    def __init__(self, tmp: Path, feeds: FeedServer, discord: DiscordAPI, slack: SlackAPI) -> None:
        self.tmp, self.discord, self.slack = tmp, discord, slack
        self.db = tmp / "fw.sqlite3"
        self.marker = tmp / "crashed"
        sources = tmp / "sources.toml"
        sources.write_text(f'[[sources]]\nname = "Wire"\nurl = "{feeds.url("/wire.xml")}"\n')
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FW_", "FRONTIERWATCH_"))},
            "FW_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
            "FW_SOURCES_FILE": str(sources),
            "FW_ALLOW_PRIVATE_SOURCES": "true",
            "FW_PARSE_WORKERS": "-1",
            "FW_DISCORD_API_BASE": discord.api_base,
            "FW_SLACK_API_BASE": slack.api_base,
            "DISCORD_TOKEN": "test-discord-token",
            "FW_DISCORD_GATEWAY": "false",  # send-only: no gateway, so no lookup of Discord's real host
            "SLACK_BOT_TOKEN": "xoxb-test-slack-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            "FW_DELIVERY_LEASE_SECONDS": "2",
            "FW_DELIVERY_MAX_BACKOFF_SECONDS": "1",
            "FW_DELIVERY_TICK_SECONDS": "0.2",
            "FW_DIGEST_TICK_SECONDS": "0.5",
            "FW_POLL_TICK_SECONDS": "3600",
            "FW_LOG_LEVEL": "INFO",
        }

    async def cli(self, *args: str, extra: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=REPO,
            env={**self.env, **(extra or {})},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=open(self.tmp / "stderr.log", "ab"),
        )

    async def prepare(self) -> None:
        """Ingest the feed with a real poll, then add the two channels with a digest due now."""
        proc = await self.cli("poll", "--once")
        assert await asyncio.wait_for(proc.wait(), 60) == 0, (self.tmp / "stderr.log").read_text()
        from bot.store.repo import Store

        store = Store(create_engine(self.env["FW_DATABASE_URL"]))
        try:
            due = {"next_digest_at": datetime.now(UTC) - timedelta(minutes=1)}
            subs = [(t, "digest", 0.0) for t in TOPICS]
            await add_destination(store, "discord", DCH, subs, **due)
            await add_destination(store, "slack", SCH, subs, **due)
        finally:
            await store.engine.dispose()

    def set_digest_due(self, at: datetime) -> None:
        with sqlite3.connect(self.db) as conn:  # the store keeps naive UTC text on SQLite
            conn.execute(
                "UPDATE destinations SET next_digest_at = ?",
                (at.astimezone(UTC).replace(tzinfo=None).isoformat(" "),),
            )

    def rows(self) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "SELECT d.platform, r.status, json_extract(r.payload, '$.entry.title') FROM deliveries r "
                "JOIN destinations d ON d.id = r.destination_id WHERE r.kind = 'digest'"
            ).fetchall()

    async def wait_all_sent(self, expected: int, within: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            rows = self.rows()
            if len(rows) == expected and all(status == "sent" for _p, status, _t in rows):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"not all delivered: {self.rows()}\n{(self.tmp / 'stderr.log').read_text()[-3000:]}"
        )

    def discord_entries(self) -> list[str]:
        return [e["title"] for msg in self.discord.posted(DCH) for e in msg["embeds"]]

    def slack_entries(self) -> list[str]:
        out = []
        for msg in self.slack.messages.get(SCH, []):
            for block in msg["blocks"]:
                text = (block.get("text") or {}).get("text", "")
                if block["type"] == "section" and text.startswith("*<"):
                    out.append(text.split("|", 1)[1].split(">", 1)[0])
        return out

    def assert_exactly_once(self) -> None:
        titles = sorted({t for _p, _s, t in self.rows()})
        assert len(titles) >= 11  # enough for a Discord digest of two messages
        assert sorted(self.discord_entries()) == titles
        assert sorted(self.slack_entries()) == titles
        assert len(self.discord.posted(DCH)) >= 2
        assert self.discord.spec_errors == [] and self.slack.spec_errors == []


@pytest.fixture
async def harness(tmp_path: Path, shared_dir: Path) -> AsyncIterator[Harness]:
    async with (
        FeedServer() as feeds,
        DiscordAPI(shared=shared_dir) as discord,
        SlackAPI(shared=shared_dir) as slack,
    ):
        feeds.add("/wire.xml", rss(datetime.now(UTC)))
        h = Harness(tmp_path, feeds, discord, slack)
        await h.prepare()
        yield h


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(
    ("point", "platform"),
    [
        ("before", "discord"),
        ("after", "discord"),
        ("after", "discord:2"),  # the second message: the first is sent and recorded
        ("before", "slack"),
        ("after", "slack"),
        ("during", "discord"),
        ("during", "slack"),
    ],
)
async def test_sigkill_then_restart_delivers_every_entry_once(
    harness: Harness, point: str, platform: str
) -> None:
    if point == "during":
        api: Any = harness.discord if platform == "discord" else harness.slack
        api.hold_responses = asyncio.Event()
        proc = await harness.cli("run")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while api.holding == 0:
            assert loop.time() < deadline, "the send never reached the stand-in"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # the message is stored, its answer never arrives
        await proc.wait()
        api.hold_responses.set()
        api.hold_responses = None
    else:
        proc = await harness.cli(
            "run",
            extra={
                "FRONTIERWATCH_TEST_CRASH": f"{point}:{platform}",
                "FRONTIERWATCH_TEST_CRASH_MARKER": str(harness.marker),
            },
        )
        assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
        assert harness.marker.read_text() == f"{point}:{platform}"
    statuses = {s for _p, s, _t in harness.rows()}
    assert statuses & {"sending", "pending"}, "the crash should leave work unfinished"
    restarted = await harness.cli("run")
    try:
        await harness.wait_all_sent(len(harness.rows()))
    finally:
        await _stop(restarted)
    harness.assert_exactly_once()


async def test_outage_then_recovery_delivers_every_entry_once(harness: Harness) -> None:
    # Both platforms answer 503 from before the process starts until after the digest is due:
    # nothing may crash, nothing may be posted, and every send is retried until they recover.
    harness.discord.outage_status = 503
    harness.slack.outage_status = 503
    harness.set_digest_due(datetime.now(UTC) + timedelta(seconds=2))
    proc = await harness.cli("run")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while len(harness.slack.method_calls("chat.postMessage")) < 3 or len(harness.discord.requests) < 3:
            assert proc.returncode is None, "the process died during the outage"
            assert loop.time() < deadline, "no retries during the outage"
            await asyncio.sleep(0.1)
        assert harness.discord.posted(DCH) == [] and harness.slack.messages.get(SCH, []) == []
        harness.discord.outage_status = None
        harness.slack.outage_status = None
        await harness.wait_all_sent(len(harness.rows()))
    finally:
        await _stop(proc)
    harness.assert_exactly_once()
