"""Feed parsing throughput on one core; prints one JSON object.

Compares raw ``feedparser.parse(io.BytesIO(body))`` with its defaults (HTML sanitiser and relative-URI
rewriting on), feedparser with ``sanitize_html=False`` (and with both off, as parse_feed runs it), and
the bot's :func:`bot.sources.parser.parse_feed` (feedparser plus text cleaning, canonical URLs, ids,
UTC dates). The feed is a generated 50-item RSS 2.0 document (title, link with tracking parameters,
guid, six HTML paragraphs of description, pubDate, category, author); 20 variants with different
titles are rotated so no cache helps. Reports the median over ``--runs`` rounds after a warm-up.

    .venv/bin/python bench/parse.py [--items 50] [--runs 15]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser

from bot.sources.parser import parse_feed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
URL = "https://bench.example/feed.xml"
PARAGRAPH = (
    "&lt;p&gt;The &lt;b&gt;Commerce Department&lt;/b&gt; said on Tuesday that new &lt;a "
    "href=&quot;https://bench.example/rules?utm_source=rss&quot;&gt;export rules&lt;/a&gt; cover model "
    "weights trained above a compute threshold, and that &lt;em&gt;distillation&lt;/em&gt; from "
    "controlled models counts as a transfer.&lt;/p&gt;"
)


def make_feed(items: int, variant: int) -> bytes:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {variant}</title><link>https://bench.example/</link>"
        "<description>benchmark</description>"
    ]
    for i in range(items):
        when = format_datetime(start + timedelta(hours=i, minutes=variant), usegmt=True)
        parts.append(
            f"<item><title>Variant {variant} story {i}: AI chip export rules &amp; model weights</title>"
            f"<link>https://bench.example/{variant}/story-{i}?utm_source=rss&amp;utm_medium=feed</link>"
            f'<guid isPermaLink="false">bench-{variant}-{i}</guid><pubDate>{when}</pubDate>'
            f"<category>policy</category><author>desk@bench.example (Desk)</author>"
            f"<description>{PARAGRAPH * 6}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def median_seconds(func: Callable[[bytes], Any], bodies: list[bytes], runs: int) -> float:
    for body in bodies[:3]:
        func(body)  # warm-up: imports, regex compilation, date-parser caches
    samples = []
    for run in range(runs):
        body = bodies[run % len(bodies)]
        started = time.perf_counter()
        func(body)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--items", type=int, default=50)
    args.add_argument("--runs", type=int, default=15)
    opts = args.parse_args()

    bodies = [make_feed(opts.items, v) for v in range(20)]
    contenders: dict[str, Callable[[bytes], Any]] = {
        "feedparser_defaults": lambda b: feedparser.parse(io.BytesIO(b), response_headers=HEADERS),
        "feedparser_sanitize_off": lambda b: feedparser.parse(
            io.BytesIO(b), response_headers=HEADERS, sanitize_html=False
        ),
        "feedparser_sanitize_and_resolve_off": lambda b: feedparser.parse(
            io.BytesIO(b), response_headers=HEADERS, sanitize_html=False, resolve_relative_uris=False
        ),
        "parse_feed": lambda b: parse_feed(b, HEADERS, URL),
    }
    check = parse_feed(bodies[0], HEADERS, URL)
    assert check.error is None and len(check.entries) == opts.items

    results: dict[str, dict[str, float]] = {}
    for name, func in contenders.items():
        seconds = median_seconds(func, bodies, opts.runs)
        results[name] = {
            "ms_per_feed": round(seconds * 1000, 2),
            "items_per_s": round(opts.items / seconds),
        }
    print(
        json.dumps(
            {
                "benchmark": "feed parsing, one core",
                "items_per_feed": opts.items,
                "bytes_per_feed": len(bodies[0]),
                "runs": opts.runs,
                "python": platform.python_version(),
                "feedparser": feedparser.__version__,
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
