"""Prometheus metrics: what the process did (counters, a histogram) and what the database holds
(gauges read at scrape time).

Every ``App`` owns one :class:`Metrics` with its own ``CollectorRegistry`` rather than the global
default registry, so tests and several Apps in one process never share or collide on a series.

Two kinds of figures, and why they differ across replicas:

* **Counters and the fetch histogram** count what *this process* did (polls, stories stored,
  deliveries, 429s met). With several replicas each counts its own share; sum them.
* **Database gauges** (sources failing, outbox depth, age of the oldest open row, digest lag) are
  read from the shared database when ``/metrics`` is scraped, so every replica reports the same
  values; take ``max`` across replicas, never ``sum``. A scrape whose query fails leaves them out
  and reports ``frontierwatch_database_up 0`` instead of stale numbers.

Labels stay bounded: no source URLs, names or channel ids; poll failure reasons are the short fixed
set :data:`FAILURE_REASONS`, platforms and delivery statuses are the code's own short lists, topics
come from the taxonomy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import FetchResult
from bot.store.figures import DatabaseFigures, read_database_figures

log = logging.getLogger(__name__)

PREFIX = "frontierwatch"

PollResult = Literal["new", "unchanged", "failed"]
# Why a poll failed, as a short fixed set (the full text is the source's `last_error`).
FAILURE_REASONS = (
    "dns",  # the name did not resolve
    "connect",  # no connection (refused, unreachable)
    "timeout",  # connect, read or total time limit
    "tls",  # certificate or handshake
    "refused",  # our SSRF guard or scheme check refused the address
    "bad_url",  # the URL (or a redirect's) cannot be fetched
    "redirect",  # a redirect loop or too many redirects
    "too_big",  # body over FW_MAX_BODY_BYTES
    "http_429",  # the server rate-limited us
    "http_4xx",
    "http_5xx",
    "network",  # any other transport trouble
    "parse",  # the document could not be read as its kind
    "database",  # our database failed mid-poll (not the source's fault)
    "internal",  # a bug
)
NO_FAILURE = "none"  # the reason label of a poll that did not fail
FetchOutcome = Literal["ok", "not_modified", "failed"]
DeliveryStatus = Literal["sent", "retry", "failed", "gone"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("sent", "retry", "failed", "gone")
PLATFORMS = ("console", "discord", "discord_webhook", "slack", "slack_webhook")
RATE_LIMITED_PLATFORMS = ("discord", "discord_webhook", "slack", "slack_webhook")
# Feeds answer in tens of milliseconds to tens of seconds; FW_TOTAL_TIMEOUT defaults to 60 s.
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SCRAPE_QUERY_TIMEOUT = 5.0  # seconds; a scrape must not hang on a stuck database


def fetch_failure_reason(result: FetchResult) -> str:
    """The :data:`FAILURE_REASONS` entry for a failed fetch, from its status and the fetcher's
    own wording (``bot/sources/fetcher.py``; ``tests/test_metrics.py`` holds both to each other)."""
    if result.error is None:
        return "network"  # a fetch with neither a body nor an error: nothing usable came back
    error = result.error
    if error.startswith("HTTP ") and result.status >= 400:
        if result.status == 429:
            return "http_429"
        return "http_5xx" if result.status >= 500 else "http_4xx"
    for start, reason in (
        ("DNS lookup failed", "dns"),
        ("cannot connect", "connect"),
        ("timed out", "timeout"),
        ("TLS error", "tls"),
        ("refused: only http", "bad_url"),
        ("refused: redirect to a non-HTTP URL", "bad_url"),
        ("refused", "refused"),
        ("invalid URL", "bad_url"),
        ("redirect to an invalid URL", "bad_url"),
        ("redirect loop", "redirect"),
        ("too many redirects", "redirect"),
        ("body larger than", "too_big"),
    ):
        if error.startswith(start):
            return reason
    return "network"


class _DatabaseGauges(Collector):
    """Yields the figures of the last scrape-time read; nothing when that read failed."""

    def __init__(self) -> None:
        self.figures: DatabaseFigures | None = None
        self.up = False

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_database_up",
            "1 when the scrape-time database read succeeded, 0 when it failed",
            value=1.0 if self.up else 0.0,
        )
        figures = self.figures
        if figures is None or not self.up:
            return
        for name, doc, value in (
            ("sources_enabled", "enabled sources (database: same on every replica)", figures.sources_enabled),
            (
                "sources_failing",
                "enabled sources whose last poll failed (database: same on every replica)",
                figures.sources_failing,
            ),
            (
                "outbox_depth",
                "deliveries pending or being sent (database: same on every replica)",
                figures.outbox_depth,
            ),
            (
                "outbox_oldest_pending_age_seconds",
                "age of the oldest pending or sending delivery, 0 when none (database)",
                figures.oldest_open_age_seconds,
            ),
            (
                "digest_lag_seconds",
                "how far past its time the most overdue digest is, 0 when none is overdue (database)",
                figures.digest_lag_seconds,
            ),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=float(value))


class Metrics:
    """The metric objects of one App, and the calls made where their events happen."""

    def __init__(self, topics: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            f"{PREFIX}_polls",
            "source polls by result (new, unchanged, failed) and failure reason (none when not failed)",
            ["result", "reason"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            f"{PREFIX}_fetch_duration_seconds",
            "time one feed or tracker request took, redirects included, by outcome",
            ["outcome"],
            buckets=FETCH_BUCKETS,
            registry=self.registry,
        )
        self.stories_stored = Counter(
            f"{PREFIX}_stories_stored", "new stories written to the database", registry=self.registry
        )
        self.stories_classified = Counter(
            f"{PREFIX}_stories_classified",
            "new stories stored per topic they passed (a story with two topics counts for both)",
            ["topic"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            f"{PREFIX}_deliveries",
            "platform messages attempted by the outbox worker, by platform and outcome "
            "(sent, retry, failed, gone); a digest part counts once",
            ["platform", "status"],
            registry=self.registry,
        )
        self.rate_limits = Counter(
            f"{PREFIX}_rate_limited",
            "HTTP 429 answers met from a chat platform (retried ones included)",
            ["platform"],
            registry=self.registry,
        )
        self._database = _DatabaseGauges()
        self.registry.register(self._database)
        self._refresh_lock = asyncio.Lock()
        # Known label values start at zero so that rate() and absent-series alerts work from the start.
        for result in ("new", "unchanged"):
            self.polls.labels(result=result, reason=NO_FAILURE)
        for topic in topics:
            self.stories_classified.labels(topic=topic)
        for platform in PLATFORMS:
            for status in DELIVERY_STATUSES:
                self.deliveries.labels(platform=platform, status=status)
        for platform in RATE_LIMITED_PLATFORMS:
            self.rate_limits.labels(platform=platform)

    # ------------------------------------------------------------------ events
    def poll_finished(self, result: PollResult, reason: str | None) -> None:
        if result != "failed":
            reason = NO_FAILURE
        elif reason not in FAILURE_REASONS:
            reason = "internal"  # an unknown value must not open a new series
        self.polls.labels(result=result, reason=reason).inc()

    def fetch_done(self, seconds: float, outcome: FetchOutcome) -> None:
        self.fetch_seconds.labels(outcome=outcome).observe(seconds)

    def stories_written(self, topics_per_story: Iterable[Iterable[str]]) -> None:
        stored = 0
        for topics in topics_per_story:
            stored += 1
            for topic in topics:
                self.stories_classified.labels(topic=topic).inc()
        self.stories_stored.inc(stored)

    def delivery_done(self, platform: str, status: DeliveryStatus) -> None:
        self.deliveries.labels(platform=platform, status=status).inc()

    def rate_limited(self, platform: str) -> None:
        self.rate_limits.labels(platform=platform).inc()

    def http_trace(self, platform: str) -> aiohttp.TraceConfig:
        """An aiohttp trace that counts every 429 answer of a session, including those a client
        library (discord.py) waits out and retries by itself without telling us."""
        trace = aiohttp.TraceConfig()

        async def on_request_end(
            session: aiohttp.ClientSession,
            context: object,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            if params.response.status == 429:
                self.rate_limited(platform)

        trace.on_request_end.append(on_request_end)
        trace.freeze()
        return trace

    # ------------------------------------------------------------------ exposition
    async def refresh_database(self, engine: AsyncEngine, now: datetime | None = None) -> None:
        """Read the database gauges for this scrape; a failure is reported, never raised."""
        async with self._refresh_lock:
            try:
                async with asyncio.timeout(SCRAPE_QUERY_TIMEOUT):
                    self._database.figures = await read_database_figures(engine, now or datetime.now(UTC))
                self._database.up = True
            except Exception as exc:
                # Only the type: a driver's message can carry the database URL.
                log.warning("metrics: reading the database failed (%s)", type(exc).__name__)
                self._database.up = False

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
