"""Hostile feeds and servers fail alone: every other source of the same cycle is still stored.

Each hostile document is generated here (nothing is stored in the repo). A good feed sits in the
same cycle and must be stored; every parser process must stay under 1 GB; ``poll --once`` must end
with a table, not a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from bot.app import App
from bot.settings import Settings
from tests.support.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)
GB = 1024 * 1024 * 1024


def rss(items: list[tuple[str, str]], *, doctype: str = "", item_attrs: str = "") -> bytes:
    body = "".join(
        f"<item{item_attrs if n == 0 else ''}><guid>{guid}</guid><title>{title}</title>"
        f"<link>https://wire.example/{guid}</link><pubDate>{format_datetime(NOW - timedelta(minutes=n))}</pubDate></item>"
        for n, (guid, title) in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{doctype}<rss version="2.0"><channel><title>T</title>'
        f"{body}</channel></rss>"
    ).encode()


GOOD = rss([("good-1", "US tightens export controls on Nvidia AI chips to China")])
# 60,000 attributes on one element: feedparser's attribute handling is quadratic (~20 s here).
QUADRATIC = rss([("q", "x")], item_attrs=" " + " ".join(f'a{i}="v"' for i in range(60_000)))
# One 100 KB entity referenced 50 times per item: below expat's amplification limit, yet it would
# become gigabytes in the parser (the attack scales with the file).
EXPANSION = rss(
    [(f"e{i}", "&big;" * 50) for i in range(600)],
    doctype='<!DOCTYPE rss [<!ENTITY big "' + "A" * 100_000 + '">]>',
)
MANY_ITEMS = rss([(f"m{i}", f"Item number {i}") for i in range(100_000)])

HOSTILE_DELAYS = {
    "/retry-inf.xml": {"Retry-After": "inf"},
    "/retry-1e20.xml": {"Retry-After": "1e20"},
    "/retry-9999.xml": {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    "/ratelimit.xml": {"RateLimit": '"api";r=0;t=1e20'},
}


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a live process in bytes, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


async def test_hostile_feeds_fail_alone_and_the_good_feed_is_stored(tmp_path: Path) -> None:
    async with FeedServer() as server:
        server.add("/good.xml", GOOD)
        server.add("/quadratic.xml", QUADRATIC)
        server.add("/expansion.xml", EXPANSION)
        server.add("/many.xml", MANY_ITEMS)
        for path, headers in HOSTILE_DELAYS.items():
            status = 429 if "ratelimit" in path else 503
            server.add(path, b"go away", status=status, headers=headers, content_type="text/plain")
        paths = ["/good.xml", "/quadratic.xml", "/expansion.xml", "/many.xml", *HOSTILE_DELAYS]
        sources = tmp_path / "sources.toml"
        sources.write_text(
            "".join(f'[[sources]]\nname = "{p.strip("/")}"\nurl = "{server.url(p)}"\n\n' for p in paths)
        )
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
            sources_file=sources,
            topics_file=REPO / "config" / "topics.toml",
            allow_private_sources=True,
            parse_workers=2,
            parse_timeout=4.0,
            parse_memory_mb=1024,
            max_items_per_feed=1000,
            max_body_bytes=32 * 1024 * 1024,
        )
        app = await App.build(settings)
        peaks: dict[int, int] = {}
        sampling = True

        async def sample() -> None:
            while sampling:
                for pid in app.parser.worker_pids():
                    peaks[pid] = max(peaks.get(pid, 0), peak_rss(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            report = await asyncio.wait_for(app.poller.poll_due(), 120)
        finally:
            sampling = False
            await sampler
        try:
            by_name = {o.name: o for o in report.outcomes}
            assert by_name["good.xml"].status == "new" and by_name["good.xml"].new == 1
            assert by_name["quadratic.xml"].status == "failed"
            assert "parse took longer than 4s" in (by_name["quadratic.xml"].error or "")
            assert by_name["expansion.xml"].status == "failed"
            assert "refused" in (by_name["expansion.xml"].error or "")
            many = by_name["many.xml"]
            assert many.status == "new" and many.new == 1000  # capped, not 100,000
            for path in HOSTILE_DELAYS:
                outcome = by_name[path.strip("/")]
                assert outcome.status == "failed", outcome
            rows = {s.name: s for s in await app.store.list_sources()}
            for path in HOSTILE_DELAYS:  # a server's delay is honoured, but never beyond a week
                row = rows[path.strip("/")]
                wait = row.next_poll_at.replace(tzinfo=UTC) - datetime.now(UTC)
                assert timedelta(hours=1) < wait <= timedelta(days=7, hours=17), (path, wait)
                assert row.lease_until is None  # saved: the lease is released
            assert rows["good.xml"].lease_until is None and rows["good.xml"].failure_count == 0
            assert peaks and max(peaks.values()) < GB, peaks
            assert peak_rss(os.getpid()) < GB
        finally:
            await app.close()


async def test_poll_once_survives_a_hostile_retry_after_without_a_traceback(tmp_path: Path) -> None:
    async with FeedServer() as server:
        server.add("/good.xml", GOOD)
        server.add("/inf.xml", b"no", status=503, headers={"Retry-After": "inf"}, content_type="text/plain")
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[sources]]\nname = "good"\nurl = "{server.url("/good.xml")}"\n\n'
            f'[[sources]]\nname = "inf"\nurl = "{server.url("/inf.xml")}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "DISCORD_", "SLACK_"))}
        env.update(
            FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
            FW_SOURCES_FILE=str(sources),
            FW_ALLOW_PRIVATE_SOURCES="true",
            FW_PARSE_WORKERS="-1",
            COLUMNS="200",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "poll", "--once",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()
    assert "Traceback" not in text, text
    assert "good" in text and "inf" in text and "503" in text
