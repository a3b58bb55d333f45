"""Benchmark: one full poll cycle through the real pipeline, against a local feed server.

    python bench/poll.py --feeds 10000 --unchanged 0.9 --delay 0.1

A server process serves N synthetic RSS feeds of 50 items on several loopback ports (each port
counts as one host for the per-host connection limit, as real feeds sit on many hosts), every
response delayed like a distant host. A priming cycle (not measured) gives every source its
ETag and first-poll backlog; then the measured cycle runs with the given share of feeds
answering 304 and the rest publishing 10 new items. For comparison the same bytes go through a
plain sequential fetch-then-``feedparser.parse`` loop (on a sample, as it takes N × delay) and
through raw ``feedparser.parse`` on one core. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
from aiohttp import web

from bot.app import App
from bot.settings import Settings

WORDS = (
    "chip export control model release open weights distillation lawsuit copyright patent senate hearing "
    "committee agency rule license startup cloud training inference dataset benchmark reasoning agent "
    "security ban espionage sanction tariff semiconductor lab research paper court ruling settlement "
    "compute cluster gpu accelerator policy framework safety evaluation frontier audit report deal "
    "investment partnership pricing api developer platform update version launch preview"
).split()


_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tas",
    "vo",
    "qui",
    "bel",
    "dor",
    "fen",
    "gru",
    "hal",
    "jin",
    "kor",
    "lun",
    "mar",
]
# Names, places and rarer words: real headlines share few words unless they tell the same story.
NAMES = sorted({a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES})


def make_feed(feed_id: int, version: int, items: int) -> bytes:
    """Deterministic RSS: version v publishes items [v*10, v*10+items) (newest first)."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Synthetic feed {feed_id}</title><link>https://feed{feed_id}.example/</link>",
        "<description>bench</description>",
    ]
    first = version * 10
    for n in range(first + items - 1, first - 1, -1):
        r = random.Random(feed_id * 1_000_003 + n)
        title = " ".join([*(r.choice(WORDS) for _ in range(4)), *(r.choice(NAMES) for _ in range(5))])
        # Mostly ordinary words with a few topical ones, like a real summary.
        para = " ".join(r.choice(WORDS) if r.random() < 0.1 else r.choice(NAMES) for _ in range(60))
        when = format_datetime(base + timedelta(minutes=n * 7 + r.randint(0, 5)))
        out.append(
            f"<item><title>{title.capitalize()}</title>"
            f"<link>https://feed{feed_id}.example/story/{n}?utm_source=rss</link>"
            f"<guid>https://feed{feed_id}.example/story/{n}</guid><pubDate>{when}</pubDate>"
            f"<description><![CDATA[<p>{para}</p><p><a href='https://x.example/{n}'>more</a></p>]]></description>"
            "</item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


# ------------------------------------------------------------------------------ server process
def serve(ports: list[int], items: int, delay: float, ready: Any, versions: Any) -> None:
    async def main() -> None:
        cache: dict[tuple[int, int], bytes] = {}

        async def handler(request: web.Request) -> web.Response:
            feed_id = int(request.match_info["id"])
            version = versions[feed_id]
            etag = f'"{feed_id}-{version}"'
            await asyncio.sleep(delay)
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            body = cache.get((feed_id, version))
            if body is None:
                body = cache[(feed_id, version)] = make_feed(feed_id, version, items)
            return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": etag})

        app = web.Application()
        app.router.add_get("/feed/{id}.xml", handler)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        for port in ports:
            await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_ports(n: int) -> list[int]:
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def feed_url(ports: list[int], feed_id: int) -> str:
    return f"http://127.0.0.1:{ports[feed_id % len(ports)]}/feed/{feed_id}.xml"


# ------------------------------------------------------------------------------ measurements
def peak_rss_mb(pids: list[int]) -> dict[str, float]:
    def hwm(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    return {
        "main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "parser_workers_max": round(max((hwm(p) for p in pids), default=0.0), 1),
    }


async def baseline_sequential(ports: list[int], sample: int) -> dict[str, float]:
    """The naive way: fetch one feed, parse it, next one."""
    started = time.perf_counter()
    items = 0
    async with aiohttp.ClientSession() as session:
        for feed_id in range(sample):
            async with session.get(feed_url(ports, feed_id)) as resp:
                body = await resp.read()
            items += len(feedparser.parse(io.BytesIO(body)).entries)
    elapsed = time.perf_counter() - started
    return {
        "sample_feeds": sample,
        "seconds": round(elapsed, 2),
        "feeds_per_s": round(sample / elapsed, 1),
        "items_per_s": round(items / elapsed, 1),
    }


def raw_feedparser(bodies: list[bytes]) -> dict[str, float]:
    started = time.process_time()
    items = sum(len(feedparser.parse(io.BytesIO(b)).entries) for b in bodies)
    elapsed = time.process_time() - started
    return {
        "feeds": len(bodies),
        "cpu_seconds": round(elapsed, 2),
        "items_per_s_one_core": round(items / elapsed, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = free_ports(args.ports)
    manager = multiprocessing.Manager()
    versions = manager.list([0] * args.feeds)
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(ports, args.items, args.delay, ready, versions), daemon=True
    )
    server.start()
    ready.wait(60)
    workdir = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    sources = workdir / "sources.toml"
    sources.write_text(
        "".join(f'[[sources]]\nname = "feed {i}"\nurl = "{feed_url(ports, i)}"\n' for i in range(args.feeds))
    )
    topics = Path(__file__).resolve().parent.parent / "config" / "topics.toml"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}",
        sources_file=sources,
        topics_file=topics,
        allow_private_sources=True,
        fetch_concurrency=args.concurrency,
        fetch_per_host=args.per_host,
    )
    app = await App.build(settings)
    # What the bot holds before it has polled anything (model, topic rules, word rarity): the
    # part of the peak that does not grow with the install.
    built_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    try:
        t0 = time.perf_counter()
        prime = await app.poller.poll_due()
        prime_s = time.perf_counter() - t0
        primed_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        failed = [o.error for o in prime.outcomes if o.status == "failed"]
        rng = random.Random(42)
        changed = sorted(rng.sample(range(args.feeds), round(args.feeds * (1 - args.unchanged))))
        for feed_id in changed:
            versions[feed_id] = 1
        now = datetime.now(UTC)
        await app.store.save_fetch_states(
            [{"id": s.id, "next_poll_at": now} for s in await app.store.list_sources()]
        )
        print("phase: measured cycle", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        report = await app.poller.poll_due(now)
        cycle_s = time.perf_counter() - t0
        # Changed-only cycle: K feeds publish 10 new items each and only they are due, so the
        # cycle is bound by parsing and storing, not by the network.
        k = min(args.feeds, args.changed_sample)
        for feed_id in range(k):
            versions[feed_id] = versions[feed_id] + 1
        sources = sorted(await app.store.list_sources(), key=lambda s: s.id)
        now = datetime.now(UTC)
        await app.store.save_fetch_states([{"id": s.id, "next_poll_at": now} for s in sources[:k]])
        print("phase: changed-only cycle", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        changed_report = await app.poller.poll_due(now)
        changed_s = time.perf_counter() - t0
        pids = app.parser.worker_pids()
        rss = peak_rss_mb(pids)
    finally:
        await app.close()
    parsed_items = sum(o.entries for o in report.outcomes)
    changed_items = sum(o.entries for o in changed_report.outcomes)
    changed_rate = changed_items / changed_s if changed_s else 0.0
    sample_ids = changed[: min(len(changed), args.baseline_sample)] or list(
        range(min(args.feeds, args.baseline_sample))
    )
    bodies = [make_feed(i, versions[i], args.items) for i in sample_ids]
    raw = raw_feedparser(bodies)
    base = await baseline_sequential(ports, min(args.feeds, args.baseline_sample))
    server.terminate()
    changed_items_per_s = parsed_items / cycle_s if cycle_s else 0.0
    raw_rate = raw["items_per_s_one_core"]
    return {
        "benchmark": "poll",
        "feeds": args.feeds,
        "items_per_feed": args.items,
        "unchanged_share": args.unchanged,
        "delay_s": args.delay,
        "hosts": args.ports,
        "cores": os.cpu_count(),
        "priming_cycle": {"seconds": round(prime_s, 2), "failed": len(failed), "first_errors": failed[:3]},
        "cycle": {
            "seconds": round(cycle_s, 2),
            "feeds_per_s": round(args.feeds / cycle_s, 1),
            "items_per_s": round(changed_items_per_s, 1),
            "changed_feeds": len(changed),
            "answered_304": sum(1 for o in report.outcomes if o.http_status == 304),
            "new": report.count("new"),
            "failed": report.count("failed"),
            "items_in_documents": parsed_items,
            "items_read_by_feedparser": sum(o.parsed for o in report.outcomes),
            "new_stories": report.stored,
        },
        "changed_only_cycle": {
            "feeds": k,
            "seconds": round(changed_s, 2),
            "items_in_documents": changed_items,
            "items_read_by_feedparser": sum(o.parsed for o in changed_report.outcomes),
            "items_per_s": round(changed_rate, 1),  # items of the changed documents handled per second
            "new_stories": changed_report.stored,
            "failed": changed_report.count("failed"),
            "vs_raw_feedparser_one_core": round(changed_rate / raw_rate, 2) if raw_rate else None,
        },
        "peak_rss_mb": {**rss, "main_after_build": built_mb, "main_after_priming": primed_mb},
        "baseline_sequential_fetch_then_parse": base,
        "raw_feedparser_same_bytes": raw,
        "targets": {"10000_feeds_90pct_unchanged_max_s": 15, "changed_vs_raw_min_ratio": 1.6},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--unchanged", type=float, default=0.9, help="share answering 304 (0..1)")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per response")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--ports", type=int, default=64, help="loopback ports = distinct hosts")
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--baseline-sample", type=int, default=100)
    parser.add_argument("--changed-sample", type=int, default=1000, help="feeds in the changed-only cycle")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
