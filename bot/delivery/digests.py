"""The digest clock and planner.

Every process ticks (APScheduler interval job); each tick claims the destinations whose
``next_digest_at`` has come, a hundred at a time, with a lease, in one ``UPDATE … WHERE id IN
(SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` (on SQLite the lock clause is dropped and writers
are serialized), until none is left. Each claimed hundred is planned in one transaction: their
rules, the window's clusters and what they already received are read once for all of them; for
each, the entries are selected, ranked and split into platform-sized parts, one outbox row per
entry is written, and ``next_digest_at`` moves on with ``CronTrigger`` in the destination's time
zone. If that transaction fails for a reason other than the database being away, the hundred are
planned again one by one, so one channel's bad data delays only its own digest. A crash before a
commit leaves nothing behind and the leases expire, so those digests are planned again; after
it, the outbox owns delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.classify.keywords import KeywordFilter
from bot.delivery.bodies import paginate
from bot.delivery.notices import scan_broken_sources
from bot.digest.common import DigestHeader
from bot.digest.entries import DigestEntry, Selection, TopicRule, select_entries, window_start
from bot.settings import Settings
from bot.store import models as m
from bot.store.db import log_failure
from bot.store.destinations import channel_rules as stored_channel_rules
from bot.store.destinations import claim_due_digests, destinations_by_id, unscheduled_digests
from bot.store.outbox import Outbox, delivered
from bot.store.repo import utcnow
from bot.store.stories import ClusterFacts, window_clusters
from bot.store.trends import DEFAULT_WEEKS, TopicEvent, topic_events, weekly_series
from bot.timetable import ScheduleError, local_date_label, next_digest_at

log = logging.getLogger(__name__)
DIGEST_TITLE = "Frontier Watch digest"
LEASE = timedelta(minutes=5)


@dataclass(slots=True)
class _TickCache:
    """What one digest tick reads once for every channel it plans."""

    facts: dict[int, ClusterFacts] = field(default_factory=dict)  # cluster -> its facts
    windows: dict[tuple[datetime, datetime], list[int]] = field(default_factory=dict)  # clusters
    trend_events: list[TopicEvent] | None = None  # the weekly chart's events, read once per tick


@dataclass(frozen=True, slots=True)
class PlannedDigest:
    destination_id: int
    batch: str
    entries: int
    parts: int
    quiet: bool = False


def _logged(results: Sequence[tuple[PlannedDigest, bool]]) -> list[PlannedDigest]:
    """Log the digests whose rows were created (after their commit), and return the plans."""
    for plan, created in results:
        if created:
            log.info(
                "digest for destination %d: %d entries in %d message(s)%s",
                plan.destination_id,
                plan.entries,
                plan.parts,
                " (quiet day)" if plan.quiet else "",
            )
    return [plan for plan, _ in results]


def _next(dest: m.Destination, after: datetime) -> datetime | None:
    try:
        return next_digest_at(
            dest.timezone, dest.digest_time, dest.digest_frequency, dest.digest_weekday, after=after
        )
    except ScheduleError as exc:
        # A bad stored setting must not stop every other channel's digest; retry daily, loudly.
        log.error("destination %d has an invalid digest schedule: %s", dest.id, exc)
        return after + timedelta(days=1)


ChannelRules = tuple[list[TopicRule], KeywordFilter]


async def channel_rules(session: AsyncSession, destination_ids: Sequence[int]) -> dict[int, ChannelRules]:
    """Each channel's topic rules and keyword filter, for many channels in two queries."""
    rows = await stored_channel_rules(session, destination_ids)
    return {
        d: ([TopicRule(*sub) for sub in r.subscriptions], KeywordFilter(r.include, r.exclude))
        for d, r in rows.items()
    }


def _selection(dest: m.Destination, since: datetime, until: datetime, rules: ChannelRules) -> Selection:
    return Selection(
        since=since,
        until=until,
        rules=rules[0],
        keywords=rules[1],
        destination_id=dest.id,
        repeat_alerted=dest.repeat_alerted_in_digest,
    )


async def destination_selection(
    session: AsyncSession, dest: m.Destination, since: datetime, until: datetime
) -> Selection:
    return _selection(dest, since, until, (await channel_rules(session, [dest.id]))[dest.id])


# Weekly digests carry the trend chart where a file can be posted: Discord (an attachment), Slack
# (the external upload flow) and the console (as text). Webhooks cannot: Slack's incoming webhooks
# take no files, and a Discord webhook's digest would be the only one without a bot to retry it.
CHART_PLATFORMS = frozenset({"discord", "slack", "console"})
CHART_TITLE = "Frontier Watch trends: events per topic per week"


def chart_row(
    dest_id: int, batch: str, fire: datetime, now: datetime, payload: dict[str, Any]
) -> dict[str, Any]:
    """The outbox row of a weekly digest's chart. It holds the series, not the image: the PNG is
    rendered at send time, so a retry re-renders the same bytes and the row stays small. Its
    cluster id is a negative surrogate from the digest's minute (never a real cluster, so
    retention and "already delivered" checks never mistake it for one)."""
    return {
        "destination_id": dest_id,
        "cluster_id": -int(fire.astimezone(UTC).timestamp() // 60),
        "kind": "chart",
        "batch": batch,
        "payload": payload,
        "next_attempt_at": now,
        "created_at": now,
    }


def with_chart(rows: list[dict[str, Any]], chart: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` with the chart right after the digest's first message: the outbox posts a
    destination's rows in id order, so the chart follows the headline part instead of trailing
    many parts behind."""
    first_part = sum(1 for r in rows if r["kind"] == "digest" and int(r["payload"].get("part", 1)) == 1)
    at = first_part or len(rows)
    return [*rows[:at], chart, *rows[at:]]


def plan_rows(
    dest_id: int,
    platform: str,
    header: DigestHeader,
    entries: Sequence[DigestEntry],
    batch: str,
    now: datetime,
) -> tuple[list[dict[str, Any]], int]:
    """Outbox rows for a digest: one per entry, each knowing its part and position."""
    pages = paginate(platform, header, entries)
    rows = []
    for part, page in enumerate(pages, start=1):
        for pos, entry in enumerate(page):
            rows.append(
                {
                    "destination_id": dest_id,
                    "cluster_id": entry.cluster_id,
                    "story_id": entry.story_id,
                    "kind": "digest",
                    "batch": batch,
                    "payload": {
                        "entry": entry.to_dict(),
                        "header": header.to_dict(),
                        "part": part,
                        "parts": len(pages),
                        "pos": pos,
                    },
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows, len(pages)


class DigestService:
    """The clock (a Service) and the ``DigestRunner`` behind ``/watch digest now``."""

    name = "digest-clock"

    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        topics: Sequence[str],
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.topics = tuple(topics)
        self.on_queued = on_queued
        self.scheduler: AsyncIOScheduler | None = None

    # ------------------------------------------------------------------ service
    async def start(self) -> None:
        self.scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
        )
        self.scheduler.add_job(
            self._tick_job,
            IntervalTrigger(seconds=self.settings.digest_tick_seconds, timezone=UTC),
            id="digest",
            name="digests and source notices",
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    async def _tick_job(self) -> None:
        try:
            await self.tick()
        except asyncio.CancelledError:  # shutdown: the claimed digests' leases lapse and are retried
            log.debug("digest tick stopped by shutdown")
        except Exception as exc:  # the next tick tries again
            log_failure(log, "digest tick failed", exc)

    # ------------------------------------------------------------------ the clock
    async def tick(self, now: datetime | None = None) -> list[PlannedDigest]:
        now = now or utcnow()
        await self.schedule_missing(now)
        planned: list[PlannedDigest] = []
        cache = _TickCache()  # this tick's clusters and windows, shared by every channel planned
        while claimed := await self.claim_due(now):
            planned.extend(await self._plan_claimed(claimed, now, cache))
        notices = await scan_broken_sources(self.outbox, self.settings, now)
        if (planned or notices) and self.on_queued is not None:
            self.on_queued()
        return planned

    async def _plan_claimed(
        self, claimed: Sequence[tuple[int, datetime]], now: datetime, cache: _TickCache
    ) -> list[PlannedDigest]:
        """Plan the claimed digests in one transaction: the reads are shared (one query for every
        channel's rules, one for what was already delivered), which is what makes 10,000 digests
        a minute's work rather than several."""
        try:
            async with self.outbox.sessions.begin() as session:
                results = await self._plan_in(session, claimed, now=now, advance=True, cache=cache)
        except (OSError, OperationalError, InterfaceError):
            raise  # the database is away: the tick logs it once; the leases lapse and retry
        except Exception:
            # One channel's bad data must not hold back the others: plan them one at a time.
            log.exception("planning %d digests together failed; planning them one by one", len(claimed))
            results = []
            for dest_id, fire in claimed:
                # Stories a rolled-back transaction loaded can no longer be read: read them again.
                cache.facts.clear()
                try:
                    async with self.outbox.sessions.begin() as session:
                        results += await self._plan_in(
                            session, [(dest_id, fire)], now=now, advance=True, cache=cache
                        )
                except Exception:
                    log.exception("planning the digest of destination %d failed", dest_id)
            cache.facts.clear()
        return _logged(results)

    async def schedule_missing(self, now: datetime) -> None:
        """Destinations created without a next digest time (or whose schedule changed to one)."""
        async with self.outbox.sessions.begin() as session:
            rows = await unscheduled_digests(session)
            for dest in rows:
                dest.next_digest_at = _next(dest, now)

    async def claim_due(self, now: datetime, limit: int = 100) -> list[tuple[int, datetime]]:
        async with self.outbox.sessions.begin() as session:
            return await claim_due_digests(session, now, now + LEASE, limit)

    async def plan(
        self,
        destination_id: int,
        *,
        fire: datetime,
        now: datetime,
        advance: bool,
        cache: dict[int, ClusterFacts] | None = None,
    ) -> PlannedDigest | None:
        """Plan one digest and, with ``advance``, move the schedule on — in one transaction."""
        tick = _TickCache(facts=cache if cache is not None else {})
        async with self.outbox.sessions.begin() as session:
            results = await self._plan_in(
                session, [(destination_id, fire)], now=now, advance=advance, cache=tick
            )
        return _logged(results)[0] if results else None

    async def _plan_in(
        self,
        session: AsyncSession,
        claimed: Sequence[tuple[int, datetime]],
        *,
        now: datetime,
        advance: bool,
        cache: _TickCache,
    ) -> list[tuple[PlannedDigest, bool]]:
        """Plan these digests in the caller's transaction: outbox rows written, schedules moved
        on. Returns each plan and whether its rows are new (False: planned before, a retry)."""
        ids = [dest_id for dest_id, _ in claimed]
        dests = {
            d.id: d
            for d in await destinations_by_id(session, ids, lock=True)
            if d.active and d.paused_at is None
        }
        rules = await channel_rules(session, list(dests))
        chosen = [
            (
                dest,
                fire,
                _selection(
                    dest, window_start(dest.last_digest_at, fire, dest.digest_frequency), now, rules[dest.id]
                ),
            )
            for dest_id, fire in claimed
            if (dest := dests.get(dest_id)) is not None
        ]
        for key in {(sel.since, sel.until) for _, _, sel in chosen} - cache.windows.keys():
            cache.windows[key] = await window_clusters(session, *key)
        every_cluster = sorted({c for _, _, sel in chosen for c in cache.windows[(sel.since, sel.until)]})
        done = await delivered(session, [dest.id for dest, _, _ in chosen], every_cluster)
        results = []
        for dest, fire, selection in chosen:
            entries = await select_entries(
                session,
                selection,
                self.topics,
                cache.facts,
                window=cache.windows[(selection.since, selection.until)],
                done=done[dest.id],
            )
            header = DigestHeader(
                title=DIGEST_TITLE,
                at=now,
                date_label=local_date_label(fire, dest.timezone),
                total=len(entries),
                overflow=sum(1 for e in entries if e.overflow),
                alert_cap=dest.alert_cap_per_hour,
            )
            batch = f"{'d' if advance else 'n'}{dest.id}:{fire.astimezone(UTC):%Y%m%dT%H%M%S}"
            rows, parts = plan_rows(dest.id, dest.platform, header, entries, batch, now)
            quiet = False
            if not rows and dest.quiet_day_notice:
                quiet = True
                rows = [
                    {
                        "destination_id": dest.id,
                        "cluster_id": int(fire.astimezone(UTC).strftime("%Y%m%d")),
                        "kind": "quiet",
                        "batch": batch,
                        "payload": {"header": header.to_dict()},
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                ]
            if rows and dest.digest_frequency == "weekly" and dest.platform in CHART_PLATFORMS:
                digest_topics = [r.topic for r in rules[dest.id][0] if r.mode != "alerts"]
                chart = await self._chart_payload(session, dest, digest_topics, now, cache)
                chart["header"] = header.to_dict()
                rows = with_chart(rows, chart_row(dest.id, batch, fire, now, chart))
            created = await self.outbox.enqueue(session, rows)
            dest.last_digest_at = now
            if advance:
                dest.next_digest_at = _next(dest, max(fire, now))
                dest.digest_lease_until = None
            results.append((PlannedDigest(dest.id, batch, len(entries), parts, quiet), bool(created)))
        return results

    async def _chart_payload(
        self,
        session: AsyncSession,
        dest: m.Destination,
        subscribed: Sequence[str],
        now: datetime,
        cache: _TickCache,
    ) -> dict[str, Any]:
        """The chart's series for this channel: its own topics (all when it follows none), weeks
        ending today in its time zone. The events are read once per tick for every channel."""
        if cache.trend_events is None:
            # A day more than the weeks: whatever a channel's time zone, its first day is inside.
            since = now - timedelta(days=DEFAULT_WEEKS * 7 + 1)
            cache.trend_events = await topic_events(session, since, now)
        chosen = set(subscribed)
        topics = [t for t in self.topics if t in chosen] or list(self.topics)
        try:
            series = weekly_series(cache.trend_events, now, timezone=dest.timezone, topics=topics)
        except (KeyError, ValueError) as exc:  # a zone the tz database no longer knows: chart in UTC
            log.warning(
                "destination %d: time zone %r unusable (%s); its chart is in UTC", dest.id, dest.timezone, exc
            )
            series = weekly_series(cache.trend_events, now, timezone="UTC", topics=topics)
        return {"title": CHART_TITLE, "series": series.to_payload()}

    # ------------------------------------------------------------------ DigestRunner
    async def digest_now(self, destination_id: int) -> int:
        """``/watch digest now``: everything since the last digest, now; the schedule stays."""
        now = utcnow()
        result = await self.plan(destination_id, fire=now, now=now, advance=False)
        if self.on_queued is not None:
            self.on_queued()
        return result.entries if result is not None else 0
