"""One poll cycle: claim due sources, then fetch → parse → ingest each, and record the outcome.

A source fails alone: whatever goes wrong (network, HTTP status, a broken document, a parser
crash) becomes its ``last_error``, its ``failure_count`` grows and its next poll backs off
exponentially (honouring Retry-After). Nothing here knows about chat platforms: new stories go
to the ``on_story`` callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from bot.domain import FetchResult, ParsedFeed, clamp_server_delay
from bot.metrics import Metrics, fetch_failure_reason
from bot.pipeline.ingest import Ingestor, NewStory
from bot.settings import Settings
from bot.sources.delta import pack_hashes, unpack_hashes
from bot.sources.trackers import parse_for_kind, rate_limit_reset, request_headers, request_url
from bot.store.db import is_database_outage
from bot.store.repo import ClaimedSource, Store, new_lease_owner, utcnow

log = logging.getLogger(__name__)

Status = Literal["new", "unchanged", "failed"]
SAVE_RETRY_SECONDS = 300.0  # how long poll results are retried through a database outage
DATABASE_RETRY = timedelta(seconds=30)  # a poll cut short by the database is retried this soon
MAX_PAGES = 3  # tracker pagination per poll: enough to catch up after a burst, polite otherwise


class Fetcher(Protocol):
    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> FetchResult: ...


class Parser(Protocol):
    async def submit(self, fn: Callable[..., ParsedFeed], /, *args: Any, **kwargs: Any) -> ParsedFeed: ...


@dataclass(slots=True)
class SourceOutcome:
    source_id: int
    name: str
    status: Status
    new: int = 0  # new stories stored
    entries: int = 0  # items in the document(s)
    parsed: int = 0  # items feedparser had to read (unchanged items of a changed feed are skipped)
    http_status: int = 0
    error: str | None = None
    backlog: bool = False  # first poll: stored without announcing
    elapsed: float = 0.0
    reason: str | None = None  # a failure's kind, one of bot.metrics.FAILURE_REASONS


@dataclass(slots=True)
class PollReport:
    started: datetime
    finished: datetime | None = None
    outcomes: list[SourceOutcome] = field(default_factory=list)
    # Counts, not the stories: a priming cycle of a large install stores hundreds of thousands,
    # and keeping each (title, summary, classification) until the cycle ends was what made a
    # replica's memory grow with the install. Sinks get the stories as they are stored.
    stored: int = 0  # new stories stored this cycle
    relevant: int = 0  # of which at least one topic

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


StorySink = Callable[[Sequence[NewStory]], Awaitable[None]]


class Poller:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        parser: Parser,
        ingestor: Ingestor,
        *,
        sinks: Sequence[StorySink] = (),
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.parser = parser
        self.ingestor = ingestor
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self._rng = rng or random.Random()
        self._cycle_lock = asyncio.Lock()
        # Names this poller in the leases it takes (host, pid and a random part: unique even when
        # two pollers share a process, as in tests).
        self.owner = new_lease_owner()

    async def poll_due(
        self,
        now: datetime | None = None,
        *,
        on_claimed: Callable[[int], None] | None = None,
        on_progress: Callable[[SourceOutcome], None] | None = None,
    ) -> PollReport:
        """Poll every source that is due now. Cycles never overlap within a process.

        Sources are claimed with a short lease (``FW_POLL_LEASE_SECONDS``) that a heartbeat renews
        while they wait or are worked on: if this process dies, or loses the database, another
        replica (or this one, once the database is back) polls them again within about a lease
        and a tick, instead of after a long fixed lease."""
        async with self._cycle_lock:
            now = now or utcnow()
            report = PollReport(started=now)
            lease = timedelta(seconds=self.settings.poll_lease_seconds)
            # Claimed in chunks, so several replicas share the work of a big install instead of one
            # taking all of it.
            chunk_size = max(1000, self.settings.fetch_concurrency * 4)
            claimed = await self.store.claim_due_sources(lease, now, limit=chunk_size, owner=self.owner)
            total = len(claimed)
            if on_claimed:
                on_claimed(total)
            if not claimed:
                report.finished = utcnow()
                return report
            held: set[int] = {s.id for s in claimed}  # claimed and not yet saved: leases to renew
            heartbeat = asyncio.create_task(self._renew_leases(held, lease), name="poll-lease-heartbeat")
            try:
                await self.ingestor.refresh_index(now)
                await self._poll_claimed(
                    claimed, report, held, now, lease, chunk_size, total, on_claimed, on_progress
                )
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            report.outcomes.sort(key=lambda o: o.source_id)
            report.finished = utcnow()
            return report

    async def _poll_claimed(
        self,
        claimed: list[ClaimedSource],
        report: PollReport,
        held: set[int],
        now: datetime,
        lease: timedelta,
        chunk_size: int,
        total: int,
        on_claimed: Callable[[int], None] | None,
        on_progress: Callable[[SourceOutcome], None] | None,
    ) -> None:
        states: list[dict[str, Any]] = []
        limit = asyncio.Semaphore(self.settings.fetch_concurrency)
        in_flight = 0
        progressed = asyncio.Event()

        async def one(source: ClaimedSource) -> None:
            nonlocal in_flight
            try:
                async with limit:
                    outcome, state = await self._poll_source(source, report)
                self.metrics.poll_finished(outcome.status, outcome.reason)
                states.append(state)
                report.outcomes.append(outcome)
                if on_progress:
                    on_progress(outcome)
                if len(states) >= 500:  # keep transactions short on big installs
                    batch = states[:]
                    states.clear()
                    await self._save_states(batch, held)
            finally:
                in_flight -= 1
                progressed.set()

        async with asyncio.TaskGroup() as group:
            while claimed:
                for source in claimed:
                    in_flight += 1
                    group.create_task(one(source))
                # Claim the next chunk when this one is nearly done: leases are taken just
                # before their work starts, and the pipeline never drains between chunks.
                while in_flight > chunk_size // 4:
                    progressed.clear()
                    await progressed.wait()
                try:
                    claimed = await self.store.claim_due_sources(
                        lease, max(now, utcnow()), limit=chunk_size, owner=self.owner
                    )
                except Exception as exc:  # the database went away: finish what is claimed
                    log.warning("claiming more sources failed: %s", _one_line(exc))
                    claimed = []
                held.update(s.id for s in claimed)
                total += len(claimed)
                if claimed and on_claimed:
                    on_claimed(total)
        await self._save_states(states, held)

    async def _renew_leases(self, held: set[int], lease: timedelta) -> None:
        every = max(1.0, lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await self.store.renew_source_leases(sorted(held), lease, self.owner)
            except Exception as exc:  # an outage: the leases lapse, and that is what frees them
                log.warning("renewing source leases failed: %s", _one_line(exc))

    async def _save_states(self, batch: list[dict[str, Any]], held: set[int]) -> None:
        """Save fetch states, retrying through a database outage. Never raises: a save that never
        succeeds only means those sources are polled again once their lease has lapsed."""
        if not batch:
            return
        delay, deadline = 0.5, asyncio.get_running_loop().time() + SAVE_RETRY_SECONDS
        while True:
            try:
                await self.store.save_fetch_states(batch, owner=self.owner)
                break
            except Exception as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    log.error("saving the poll results of %d sources failed: %s", len(batch), _one_line(exc))
                    break
                log.warning("saving poll results failed (%s); retrying in %.0fs", _one_line(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        held.difference_update(state["id"] for state in batch)

    async def _poll_source(
        self, source: ClaimedSource, report: PollReport
    ) -> tuple[SourceOutcome, dict[str, Any]]:
        started = utcnow()
        outcome = SourceOutcome(source.id, source.name, "unchanged", backlog=not source.backlog_done)
        state: dict[str, Any] = {"id": source.id, "last_polled_at": started}
        try:
            await self._fetch_parse_ingest(source, outcome, state, report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a database hiccup must not stop the other sources
            outcome.status = "failed"
            outcome.reason = "internal"
            if is_database_outage(exc):
                outcome.reason = "database"
                # Not the source's fault: no back-off, no failure counted; polled again soon.
                log.warning("polling %s: the database failed (%s)", source.name, _one_line(exc))
                outcome.error = f"database unavailable: {_one_line(exc)}"[:300]
                state.update(last_error=outcome.error, next_poll_at=utcnow() + DATABASE_RETRY)
                outcome.elapsed = (utcnow() - started).total_seconds()
                return outcome, state
            log.exception("polling %s failed", source.name)
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"[:300]
        try:
            self._schedule_next(source, outcome, state, started)
        except Exception as exc:  # whatever a source's answer did, its failure stays its own
            log.exception("scheduling %s failed", source.name)
            outcome.status, outcome.error = "failed", f"internal error: {type(exc).__name__}: {exc}"[:300]
            outcome.reason = "internal"
            state = {
                "id": source.id,
                "last_polled_at": started,
                "failure_count": source.failure_count + 1,
                "last_error": outcome.error,
                "next_poll_at": started + self._interval(source),
            }
        outcome.elapsed = (utcnow() - started).total_seconds()
        return outcome, state

    def _schedule_next(
        self, source: ClaimedSource, outcome: SourceOutcome, state: dict[str, Any], started: datetime
    ) -> None:
        if outcome.status == "failed":
            failures = source.failure_count + 1
            state.update(
                failure_count=failures,
                last_error=outcome.error,
                next_poll_at=started + self._backoff(source, failures, state.pop("retry_after", None)),
            )
            limit = self.settings.disable_after_failures
            if limit and failures >= limit:
                state["enabled"] = False
                log.warning("disabled %s after %d failures: %s", source.name, failures, outcome.error)
        else:
            state.pop("retry_after", None)
            state.update(
                failure_count=0,
                last_error=None,
                last_success_at=started,
                next_poll_at=started + self._interval(source),
            )

    async def _fetch_parse_ingest(
        self, source: ClaimedSource, outcome: SourceOutcome, state: dict[str, Any], report: PollReport
    ) -> None:
        spec = source.spec
        url: str | None = request_url(spec, self.settings)
        headers = request_headers(spec, self.settings)
        etag, last_modified = source.etag, source.last_modified
        pages = 0
        while url and pages < MAX_PAGES:
            pages += 1
            fetch_started = time.monotonic()
            result = await self.fetcher.fetch(
                url,
                etag=etag if pages == 1 else None,
                last_modified=last_modified if pages == 1 else None,
                extra_headers=headers,
            )
            fetch_seconds = time.monotonic() - fetch_started
            outcome.http_status = result.status
            state["last_status"] = result.status
            if result.error is not None or (result.body is None and not result.not_modified):
                self.metrics.fetch_done(fetch_seconds, "failed")
                outcome.status, outcome.error = "failed", result.error or "empty response"
                outcome.reason = fetch_failure_reason(result)
                state["retry_after"] = result.retry_after or rate_limit_reset(result.headers)
                return
            if result.not_modified:
                self.metrics.fetch_done(fetch_seconds, "not_modified")
                return  # 304: nothing to parse
            self.metrics.fetch_done(fetch_seconds, "ok")
            assert result.body is not None
            parsed = await self.parser.submit(
                parse_for_kind,
                spec.kind,
                result.body,
                result.headers,
                result.final_url,
                summary_chars=self.settings.summary_chars,
                org=spec.org,
                repo=spec.repo,
                known_items=unpack_hashes(source.item_hashes) if pages == 1 else frozenset(),
                max_items=self.settings.max_items_per_feed,
            )
            if parsed.error is not None:
                outcome.status, outcome.error, outcome.reason = "failed", parsed.error, "parse"
                return
            outcome.entries += len(parsed.entries) + parsed.items_skipped
            outcome.parsed += len(parsed.entries)
            ingested = await self.ingestor.ingest(
                source, parsed.entries, utcnow(), default_outlet=source.name
            )
            if pages == 1:
                # Stored: only now may the next poll be conditional, and these items be skipped.
                # (Saved before, a failed parse or store would be answered 304 and lost.)
                state["etag"], state["last_modified"] = result.etag, result.last_modified
                state["item_hashes"] = pack_hashes(parsed.item_hashes)
            state["backlog_done"] = True
            outcome.new += len(ingested.new_stories)
            if ingested.new_stories:
                outcome.status = "new"
                report.stored += len(ingested.new_stories)
                report.relevant += sum(1 for s in ingested.new_stories if s.classification.topics)
                announce = [s for s in ingested.new_stories if s.announce]
                if announce:
                    await self._emit(announce)
            # Follow pagination only while every entry was new (we have not caught up yet),
            # and never on a first poll, which should not crawl a whole organisation.
            seen_before = len(parsed.entries) - len(ingested.new_stories) - ingested.new_sightings
            caught_up = seen_before + parsed.items_skipped > 0
            url = parsed.next_url if (source.backlog_done and not caught_up) else None

    async def _emit(self, stories: Sequence[NewStory]) -> None:
        for sink in self.sinks:
            try:
                await sink(stories)
            except Exception:  # one broken sink must not lose the poll's bookkeeping
                log.exception("story sink %r failed", sink)

    def _interval(self, source: ClaimedSource) -> timedelta:
        base = source.interval_minutes * 60.0
        return timedelta(seconds=base * (1 + self._rng.random() * self.settings.interval_jitter))

    def _backoff(self, source: ClaimedSource, failures: int, retry_after: float | None) -> timedelta:
        base = source.interval_minutes * 60.0 * 2 ** min(max(failures, 1) - 1, 16)
        capped = min(base, self.settings.max_backoff_minutes * 60.0)
        # A server may ask for more than our own cap, but never for more than a week (and "inf"
        # or "1e20" must neither silence a source for good nor overflow a timedelta).
        delay = max(capped, clamp_server_delay(retry_after) or 0.0)
        return timedelta(seconds=delay * (1 + self._rng.random() * self.settings.interval_jitter))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
