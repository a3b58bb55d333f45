"""Three `frontierwatch run` replicas on one PostgreSQL database (issue 12).

Real processes share the feeds (a local server, each response slow enough that polls are in
flight) and one Discord channel (the stand-in: rate limits, nonces). One replica is SIGKILLed
while the second round of polls is under way and started again. Then:

* every source was polled once per interval: never twice within one, except a source the killed
  replica held (it is polled again, as it must be, within a lease), and never left longer than an
  interval plus a lease and a tick;
* every new story was alerted exactly once: one Discord message per story, every alert row sent;
* nothing was lost, nothing doubled, and no replica logged a traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.store.db import create_engine, migrate
from bot.store.repo import Store
from tests.conftest import _fresh_postgres_schema
from tests.support.discord_api import DiscordAPI
from tests.support.feedserver import FeedServer
from tests.support.newsdb import add_destination

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "300000000000000099"
TOPICS = ("distillation", "ip", "natsec", "release")
FEEDS = 6
INTERVAL = 60.0  # seconds: the smallest interval a source can have (1 minute)
LEASE = 5.0
TICK = 1.0
DELAY = 2.0  # every feed answers this slowly, so a poll is in flight when the replica dies
OLD = [f"Archive item {n} about quarterly earnings of a retailer" for n in range(FEEDS * 2)]
NEW = [
    "US tightens export controls on Nvidia AI chips bound for China",
    "Anthropic accuses DeepSeek of distilling Claude through fraudulent accounts",
    "Authors win copyright ruling against AI startup over training on pirated books",
    "Meta releases Llama 5 open-weight model family",
    "FBI arrests Google engineer accused of stealing AI chip secrets for Chinese firms",
    "Alibaba releases Qwen 4 large language model",
]


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    yield from _fresh_postgres_schema(postgres_url)


def feed(n: int, titles: list[tuple[str, str]]) -> bytes:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{title}</title><link>https://news{n}.example/{guid}</link><guid>{guid}</guid>"
        f"<description>{title}. Officials described the decision on Monday.</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=k))}</pubDate></item>"
        for k, (guid, title) in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet {n}</title>'
        f"<link>https://news{n}.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


@pytest.mark.timeout(420)  # three poll rounds of a 1-minute interval, and start-ups
async def test_three_replicas_one_killed_poll_once_per_interval_and_deliver_once(
    tmp_path: Path, pg_url: str, shared_dir: Path
) -> None:
    engine = create_engine(pg_url)
    await migrate(engine)
    store = Store(engine)
    procs: list[asyncio.subprocess.Process | None] = [None, None, None]
    async with FeedServer() as server, DiscordAPI(shared=shared_dir) as discord:
        old = {n: [(f"old{n}-{k}", OLD[n * 2 + k]) for k in range(2)] for n in range(FEEDS)}
        for n in range(FEEDS):
            server.add(f"/f{n}.xml", feed(n, old[n]), delay=DELAY)
        sources = tmp_path / "sources.toml"
        sources.write_text(
            "".join(
                f'[[sources]]\nname = "Outlet {n}"\nurl = "{server.url(f"/f{n}.xml")}"\ninterval_minutes = 1\n\n'
                for n in range(FEEDS)
            )
        )
        await add_destination(
            store,
            "discord",
            CHANNEL,
            [(t, "alerts", 0.001) for t in TOPICS],
            workspace_id="1",
            alert_cap_per_hour=50,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
        env.update(
            FW_DATABASE_URL=pg_url,
            FW_SOURCES_FILE=str(sources),
            FW_ALLOW_PRIVATE_SOURCES="true",
            FW_PARSE_WORKERS="-1",
            FW_POLL_TICK_SECONDS=str(TICK),
            FW_POLL_LEASE_SECONDS=str(LEASE),
            FW_INTERVAL_JITTER="0",
            FW_DELIVERY_LEASE_SECONDS="3",
            FW_DELIVERY_TICK_SECONDS="0.3",
            FW_DELIVERY_MAX_BACKOFF_SECONDS="2",
            FW_DIGEST_TICK_SECONDS="5",
            FW_DISCORD_API_BASE=discord.api_base,
            FW_DISCORD_GATEWAY="false",
            DISCORD_TOKEN="test-discord-token",
            PYTHONUNBUFFERED="1",
        )
        logs = [tmp_path / f"replica{i}.log" for i in range(3)]

        async def start(i: int) -> None:
            with open(logs[i], "ab") as log:  # the child keeps its own copy of the descriptor
                procs[i] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run",
                    cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log,
                )  # fmt: skip

        def polls() -> dict[str, list[float]]:
            times: dict[str, list[float]] = {}
            for r in server.requests:
                times.setdefault(r.path, []).append(r.at)
            return times

        async def wait(predicate: object, seconds: float, what: str) -> None:
            deadline = time.monotonic() + seconds
            while not predicate():  # type: ignore[operator]
                if time.monotonic() > deadline:
                    tail = "".join(p.read_text()[-1500:] for p in logs)
                    raise AssertionError(f"{what}: not within {seconds:.0f} s\n{tail}")
                await asyncio.sleep(0.2)

        try:
            await start(0)  # the first syncs the sources file; the others join once it is polling
            await wait(lambda: len(server.requests) > 0, 60, "first replica polling")
            await start(1)
            await start(2)
            # Round 1: every feed's backlog is stored (and not announced).
            await wait(
                lambda: all(len(t) >= 1 for t in polls().values()) and len(polls()) == FEEDS, 60, "round 1"
            )
            # New stories appear; the next round (an interval later) finds them.
            for n in range(FEEDS):
                server.add(f"/f{n}.xml", feed(n, [(f"new{n}", NEW[n]), *old[n]]), delay=DELAY)
            await wait(lambda: sum(len(t) for t in polls().values()) >= FEEDS + 2, INTERVAL + 30, "round 2")
            killed_at = time.monotonic()
            victim = procs[0]
            assert victim is not None
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            await asyncio.sleep(2)
            await start(0)
            # Every new story reaches the channel once.
            await wait(lambda: len(discord.posted(CHANNEL)) >= FEEDS, 90, "every alert delivered")
            # Let a third round run, with nobody killed, to see the schedule settle.
            await wait(lambda: all(len(t) >= 3 for t in polls().values()), INTERVAL + LEASE + 30, "round 3")
            await asyncio.sleep(3)  # anything still in flight would arrive now
        finally:
            for proc in procs:
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                if proc is not None:
                    try:
                        await asyncio.wait_for(proc.wait(), 30)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()

        # -------------------------------------------------------------------------- polling
        slack = LEASE + TICK + DELAY + 5  # a lease to lapse, a tick to notice, a slow response, load
        for path, times in polls().items():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            for a, gap in zip(times, gaps, strict=False):
                assert gap <= INTERVAL + slack, (path, gaps)
                near_kill = killed_at - INTERVAL <= a <= killed_at + slack
                assert gap >= INTERVAL - 2 or near_kill, (path, gaps)  # polled twice in one interval
        # ------------------------------------------------------------------------- delivery
        posted = [e["title"] for msg in discord.posted(CHANNEL) for e in msg.get("embeds", [])]
        assert Counter(posted) == Counter(NEW), posted
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT status, count(*) FROM deliveries WHERE kind = 'alert' GROUP BY status")
                )
            ).all()
        assert dict(rows) == {"sent": FEEDS}
        assert discord.spec_errors == []
        text = "".join(p.read_text() for p in logs)
        assert "Traceback" not in text, text[-3000:]
    await engine.dispose()
