"""ParserPool keeps the event loop responsive, matches inline parsing and survives dead workers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.domain import ParsedFeed
from bot.sources.parsepool import INLINE, ParserPool
from bot.sources.parser import parse_feed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
URL = "https://big.example/feed.xml"
TINY = (
    b'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
    b"<link>https://big.example/x</link></item></channel></rss>"
)


def make_rss(items: int, paragraph_repeat: int = 6) -> bytes:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    paragraph = (
        "&lt;p&gt;Export controls on advanced &lt;b&gt;AI chips&lt;/b&gt; were tightened again, "
        "with new &lt;a href=&quot;https://big.example/r&quot;&gt;rules&lt;/a&gt; for model weights.&lt;/p&gt;"
    )
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>']
    for i in range(items):
        when = format_datetime(start + timedelta(minutes=i), usegmt=True)
        parts.append(
            f"<item><title>Story number {i} about distillation &amp; IP</title>"
            f"<link>https://big.example/story/{i}?utm_source=rss</link>"
            f'<guid isPermaLink="false">story-{i}</guid><pubDate>{when}</pubDate>'
            f"<category>policy</category><description>{paragraph * paragraph_repeat}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


async def measure_parse(pool: ParserPool, body: bytes) -> tuple[ParsedFeed, float, float]:
    """Parse while a 10 ms ticker runs; returns (result, parse seconds, max gap between ticks)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # let the ticker settle
    started = time.perf_counter()
    result = await pool.parse(body, HEADERS, URL)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return result, elapsed, max(gaps)


async def test_event_loop_stays_responsive_during_a_large_parse() -> None:
    body = make_rss(10_000, paragraph_repeat=4)
    assert 9_000_000 < len(body) < 12_000_000
    async with ParserPool(workers=1) as pool:
        await pool.parse(TINY, HEADERS, URL)  # start the worker outside the measurement
        result, elapsed, max_gap = await measure_parse(pool, body)
    assert result.error is None
    assert len(result.entries) == 10_000
    assert result.entries[0].url == "https://big.example/story/0"
    assert elapsed > 0.5, f"the parse should take a while ({elapsed:.2f} s), or the test proves nothing"
    assert max_gap < 0.25, f"event loop stalled for {max_gap:.3f} s during a {elapsed:.2f} s parse"
    assert elapsed > 3 * max_gap


async def test_inline_mode_blocks_but_gives_the_same_result() -> None:
    body = make_rss(300)
    async with ParserPool(workers=INLINE) as inline, ParserPool(workers=2) as pooled:
        assert inline.inline and not pooled.inline
        from_inline = await inline.parse(body, HEADERS, URL, summary_chars=120)
        from_pool = await pooled.parse(body, HEADERS, URL, summary_chars=120)
    assert from_inline == from_pool == parse_feed(body, HEADERS, URL, summary_chars=120)
    assert len(from_pool.entries) == 300
    assert all(len(e.summary) <= 120 for e in from_pool.entries)


async def test_concurrent_parses() -> None:
    bodies = [make_rss(n, paragraph_repeat=1) for n in range(1, 13)]
    async with ParserPool(workers=2) as pool:
        results = await asyncio.gather(*(pool.parse(b, HEADERS, URL) for b in bodies))
    assert [len(r.entries) for r in results] == list(range(1, 13))


async def test_dead_worker_gives_parser_crashed_and_the_pool_recovers() -> None:
    body = make_rss(10_000, paragraph_repeat=1)
    async with ParserPool(workers=1) as pool:
        await pool.parse(TINY, HEADERS, URL)
        parsing = asyncio.create_task(pool.parse(body, HEADERS, URL))
        await asyncio.sleep(0.3)
        executor = pool._executor
        assert executor is not None
        # Test-only peek at the executor's workers, to simulate an OOM kill or a segfault.
        for pid in list(executor._processes):
            os.kill(pid, signal.SIGKILL)
        crashed = await asyncio.wait_for(parsing, timeout=30)
        assert crashed == ParsedFeed(entries=[], error="parser crashed")
        assert pool.crashes == 1
        recovered = await pool.parse(TINY, HEADERS, URL)
        assert recovered.error is None and [e.title for e in recovered.entries] == ["x"]


async def test_closed_pool_refuses_work() -> None:
    pool = ParserPool(workers=1)
    await pool.parse(TINY, HEADERS, URL)
    pool.close()
    with pytest.raises(RuntimeError):
        await pool.parse(TINY, HEADERS, URL)
    inline = ParserPool(workers=INLINE)
    inline.close()
    with pytest.raises(RuntimeError):
        await inline.parse(TINY, HEADERS, URL)


def test_worker_count() -> None:
    assert ParserPool().workers == (os.cpu_count() or 1)
    assert ParserPool(workers=3).workers == 3
    with pytest.raises(ValueError):
        ParserPool(workers=-2)
