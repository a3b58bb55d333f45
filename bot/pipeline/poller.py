"""One poll cycle: claim due sources, then fetch → parse → ingest each, and record the outcome.

A source fails alone: whatever goes wrong (network, HTTP status, a broken document, a parser
crash) becomes its ``last_error``, its ``failure_count`` grows and its next poll backs off
exponentially (honouring Retry-After). Nothing here knows about chat platforms: new stories go
to the ``on_story`` callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from bot.domain import FetchResult, ParsedFeed
from bot.pipeline.ingest import Ingestor, NewStory
from bot.settings import Settings
from bot.sources.trackers import parse_for_kind, rate_limit_reset, request_headers, request_url
from bot.store.repo import ClaimedSource, Store, utcnow

log = logging.getLogger(__name__)

Status = Literal["new", "unchanged", "failed"]
LEASE = timedelta(minutes=10)
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


@dataclass(slots=True)
class PollReport:
    started: datetime
    finished: datetime | None = None
    outcomes: list[SourceOutcome] = field(default_factory=list)
    new_stories: list[NewStory] = field(default_factory=list)

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
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.parser = parser
        self.ingestor = ingestor
        self.sinks = list(sinks)
        self._rng = rng or random.Random()
        self._cycle_lock = asyncio.Lock()
        # Hashes of each source's item elements as of its last stored poll (delta parsing); in
        # memory only: after a restart, or on another replica, a feed is simply parsed whole once.
        self._known_items: dict[int, frozenset[bytes]] = {}

    async def poll_due(
        self,
        now: datetime | None = None,
        *,
        on_claimed: Callable[[int], None] | None = None,
        on_progress: Callable[[SourceOutcome], None] | None = None,
    ) -> PollReport:
        """Poll every source that is due now. Cycles never overlap within a process."""
        async with self._cycle_lock:
            now = now or utcnow()
            report = PollReport(started=now)
            # Claimed in chunks, so a big install's lease (10 minutes) never runs out mid-cycle
            # and several replicas share the work instead of one taking all of it.
            chunk_size = max(1000, self.settings.fetch_concurrency * 4)
            claimed = await self.store.claim_due_sources(LEASE, now, limit=chunk_size)
            total = len(claimed)
            if on_claimed:
                on_claimed(total)
            if not claimed:
                report.finished = utcnow()
                return report
            await self.ingestor.refresh_index(now)
            states: list[dict[str, Any]] = []
            limit = asyncio.Semaphore(self.settings.fetch_concurrency)
            in_flight = 0
            progressed = asyncio.Event()

            async def one(source: ClaimedSource) -> None:
                nonlocal in_flight
                try:
                    async with limit:
                        outcome, state = await self._poll_source(source, report)
                    states.append(state)
                    report.outcomes.append(outcome)
                    if on_progress:
                        on_progress(outcome)
                    if len(states) >= 500:  # keep transactions short on big installs
                        batch = states[:]
                        states.clear()
                        await self.store.save_fetch_states(batch)
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
                    claimed = await self.store.claim_due_sources(LEASE, now, limit=chunk_size)
                    total += len(claimed)
                    if claimed and on_claimed:
                        on_claimed(total)
            await self.store.save_fetch_states(states)
            report.outcomes.sort(key=lambda o: o.source_id)
            report.finished = utcnow()
            return report

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
            log.exception("polling %s failed", source.name)
            outcome.status, outcome.error = "failed", f"internal error: {type(exc).__name__}: {exc}"[:300]
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
        outcome.elapsed = (utcnow() - started).total_seconds()
        return outcome, state

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
            result = await self.fetcher.fetch(
                url,
                etag=etag if pages == 1 else None,
                last_modified=last_modified if pages == 1 else None,
                extra_headers=headers,
            )
            outcome.http_status = result.status
            state["last_status"] = result.status
            if result.error is not None or (result.body is None and not result.not_modified):
                outcome.status, outcome.error = "failed", result.error or "empty response"
                state["retry_after"] = result.retry_after or rate_limit_reset(result.headers)
                return
            if result.not_modified:
                return  # 304: nothing to parse
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
                known_items=self._known_items.get(source.id, frozenset()) if pages == 1 else frozenset(),
            )
            if parsed.error is not None:
                outcome.status, outcome.error = "failed", parsed.error
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
                self._known_items[source.id] = parsed.item_hashes
            state["backlog_done"] = True
            outcome.new += len(ingested.new_stories)
            if ingested.new_stories:
                outcome.status = "new"
                report.new_stories.extend(ingested.new_stories)
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
        base = source.interval_minutes * 60.0 * 2 ** min(failures - 1, 16)
        capped = min(base, self.settings.max_backoff_minutes * 60.0)
        delay = max(capped, retry_after or 0.0)
        return timedelta(seconds=delay * (1 + self._rng.random() * self.settings.interval_jitter))
