"""Turns parsed entries into stored stories: dedup, classify, cluster, store.

Dedup happens at two levels: an entry already seen in its source is skipped (same guid), and an
entry whose canonical URL is already stored becomes another sighting of that story (same URL
across sources). Everything else is a new story: it is classified, placed in a cluster and
written.

Writes go through one writer task that takes every feed waiting at that moment and stores them
in a single transaction: on a busy poll that turns thousands of small transactions into a few
dozen, and it keeps SQLite to one writer. A batch's stories are placed in clusters one at a time in
published order, each seeing the ones before it, as ``frontierwatch cluster-eval`` measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.classify import classify_many
from bot.domain import Classification, Entry
from bot.metrics import Metrics
from bot.pipeline.cluster import ClusterIndex, IndexedStory, index_entry
from bot.store.repo import ClaimedSource, IndexRow, Store, sha1
from bot.store.stories import NewStoryRow, Sighting, TopicScore, mark_official, write_sightings, write_stories

if TYPE_CHECKING:
    from bot.classify import Classifier

log = logging.getLogger(__name__)
_R = TypeVar("_R")

# Older entries are stored but never announced: a feed that surfaces an old post is not news.
ANNOUNCE_MAX_AGE = timedelta(days=3)
MAX_BATCH_ENTRIES = 5000  # per transaction
INDEX_PAGE = 5000  # stories read per query when the index catches up with the store
WIDE_REFRESH_EVERY = timedelta(minutes=1)
WIDE_REFRESH_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story stored by this poll, as handed to sinks (console, chat)."""

    story_id: int
    cluster_id: int
    title: str
    url: str
    summary: str
    outlet: str
    published_at: datetime
    classification: Classification
    joined_cluster: bool  # True when it joined an existing cluster (another outlet's story)
    announce: bool  # False for a source's first-poll backlog and for old entries
    official: bool = False  # stored from an official source (sources.toml `official = true`)


@dataclass(frozen=True, slots=True)
class IngestResult:
    seen: int  # entries in the feed
    new_stories: list[NewStory]
    new_sightings: int  # entries of stories already stored (from another source or feed)


@dataclass(slots=True)
class _Job:
    source: ClaimedSource
    entries: list[Entry]
    default_outlet: str
    now: datetime
    done: asyncio.Future[IngestResult]
    new_stories: list[NewStory] = field(default_factory=list)
    sightings: int = 0


@dataclass(slots=True)
class _Plan:
    """A new story about to be inserted. ``target``: an existing cluster id, the ``_Plan`` whose
    new cluster it joins (same batch), or None for a cluster of its own."""

    job: _Job
    guid_hash: str
    entry: Entry
    url_hash: str
    outlet: str
    classification: Classification
    indexed: IndexedStory
    target: int | _Plan | None
    story_id: int = 0


@dataclass(slots=True)
class _Sighting:
    job: _Job
    guid_hash: str
    outlet: str
    url_hash: str


class Ingestor:
    """The single writer of stories; keeps the cluster index fresh from the store."""

    def __init__(
        self, store: Store, classifier: Classifier, index: ClusterIndex, *, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.index = index
        self.metrics = metrics or Metrics()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._wide_refresh_at: datetime | None = None
        self._index_lock = asyncio.Lock()
        # The ids of the stories of the batch being written, in the index until it is stored
        # (then renamed) or not (then withdrawn); negative and never reused, so an id can never
        # name two stories.
        self._provisional: list[int] = []
        self._next_provisional = 0

    async def refresh_index(self, now: datetime) -> None:
        """Load stories stored since the last refresh (by any replica) into the cluster index.

        By id, which is cheap. Every minute it also looks for gaps: on PostgreSQL another replica's
        ids are handed out at insert but visible only at commit, so a lower id can appear after
        higher ones were read. Only the ids of the last minutes are read for that, and only the
        missing stories are loaded."""
        async with self._index_lock:
            await self._refresh_index(now)

    async def _refresh_index(self, now: datetime) -> None:
        since = now - self.index.window
        after = self.index.last_story_id
        while True:  # in pages: a cold start on a busy window must not hold it all at once
            rows = await self.store.recent_stories_for_index(after, since, limit=INDEX_PAGE)
            self._add_rows(rows)
            if len(rows) < INDEX_PAGE:
                break
            after = rows[-1][0]
        if self._wide_refresh_at is not None and now - self._wide_refresh_at >= WIDE_REFRESH_EVERY:
            recent = max(since, self._wide_refresh_at - WIDE_REFRESH_MARGIN)
            ids = await self.store.story_ids_seen_since(recent, self.index.last_story_id, since)
            missing = [i for i in ids if i not in self.index]
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                self._add_rows(await self.store.recent_stories_for_index(0, since, ids=chunk))
        if self._wide_refresh_at is None or now - self._wide_refresh_at >= WIDE_REFRESH_EVERY:
            self._wide_refresh_at = now
        self.index.prune(now)

    def _add_rows(self, rows: list[IndexRow]) -> None:
        for story_id, cluster_id, outlet, title, summary, published, first_seen, extra in rows:
            model = extra.get("model") if extra else None
            self.index.add(
                index_entry(
                    story_id=story_id,
                    cluster_id=cluster_id,
                    outlet=outlet,
                    title=title,
                    summary=summary,
                    at=min(published, first_seen),
                    seen=first_seen,
                    model=model if isinstance(model, str) else None,
                )
            )

    async def ingest(
        self, source: ClaimedSource, entries: list[Entry], now: datetime, *, default_outlet: str
    ) -> IngestResult:
        """Store one source's entries (batched with whatever else is waiting)."""
        loop = asyncio.get_running_loop()
        job = _Job(source, entries, default_outlet, now, loop.create_future())
        await self._queue.put(job)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="ingest-writer")
        return await job.done

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_loop(self) -> None:
        while not self._queue.empty():
            batch = [self._queue.get_nowait()]
            size = len(batch[0].entries)
            while not self._queue.empty() and size < MAX_BATCH_ENTRIES:
                job = self._queue.get_nowait()
                batch.append(job)
                size += len(job.entries)
            try:
                await self._write(batch)
            finally:
                # Whatever happened (cancellation included), no caller may wait forever.
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(RuntimeError("the story writer stopped"))

    async def _write(self, batch: list[_Job]) -> None:
        try:
            await self._write_once(batch)
        except IntegrityError:
            # Another replica stored one of these URLs a moment ago. Alone, each job sees it.
            for job in batch:
                job.new_stories, job.sightings = [], 0
                try:
                    await self._write_once([job])
                except Exception as exc:
                    if not job.done.done():
                        job.done.set_exception(exc)
        except Exception as exc:
            for job in batch:
                if not job.done.done():
                    job.done.set_exception(exc)
            return
        for job in batch:
            if not job.done.done():
                job.done.set_result(IngestResult(len(job.entries), job.new_stories, job.sightings))

    async def _write_once(self, batch: list[_Job]) -> None:
        now = max(job.now for job in batch)
        await self.refresh_index(now)
        plans: list[_Plan] = []
        try:
            async with self.store.sessions.begin() as session:
                fresh = await self._fresh_entries(session, batch)
                if not fresh:
                    return
                stored = await self.store.stories_by_url(session, list({sha1(e.url) for _, _, e in fresh}))
                # Classifying and clustering a big batch is CPU work: it runs in a thread so the
                # event loop keeps serving chat and fetches; index refreshes wait for _index_lock
                # meanwhile, as the thread changes the index.
                async with self._index_lock:
                    plans, sightings, touched, planned = await _finish_in_thread(
                        functools.partial(self._plan_batch, fresh, stored)
                    )
                if plans:
                    await self._insert_stories(session, plans, now)
                ids = {url_hash: story_id for url_hash, (story_id, _c) in stored.items()}
                ids.update({p.url_hash: p.story_id for p in plans})
                if sightings:
                    await write_sightings(
                        session,
                        [
                            Sighting(s.job.source.id, s.guid_hash, s.outlet, ids[s.url_hash])
                            for s in sightings
                        ],
                        now,
                    )
                    for s in sightings:
                        s.job.sightings += 1
                        if s.url_hash in planned:  # another outlet of a story founded in this batch
                            touched.add(_cluster_of(planned[s.url_hash]))
                    await mark_official(
                        session, sorted({ids[s.url_hash] for s in sightings if s.job.source.official})
                    )
                touched.update(_cluster_of(p) for p in plans if p.target is not None)
                if touched:
                    await self.store.refresh_cluster_counts(session, touched)
        except BaseException:
            # Not stored (a rolled-back batch, another replica's URL, a cancelled writer): it must
            # leave no trace in the index (nor in the counters, or a batch retried job by job
            # would be counted twice). The planning thread has finished (_finish_in_thread).
            self._withdraw_provisional()
            raise
        # Stored. No await from the commit to here, so a cancelled writer cannot leave the batch
        # under provisional ids; and no lock needed: the planning thread, the only code that
        # touches the index off the event loop, has finished.
        self.index.rename({p.indexed.story_id: p.story_id for p in plans})
        self._provisional.clear()
        self.metrics.stories_written(p.classification.topics for p in plans)
        for plan in plans:
            plan.job.new_stories.append(_new_story(plan, now))

    def _withdraw_provisional(self) -> None:
        self.index.withdraw(self._provisional)
        self._provisional.clear()

    def _plan_batch(
        self, fresh: list[tuple[_Job, str, Entry]], stored: dict[str, tuple[int, int]]
    ) -> tuple[list[_Plan], list[_Sighting], set[int], dict[str, _Plan]]:
        plans: list[_Plan] = []
        sightings: list[_Sighting] = []
        touched: set[int] = set()
        planned: dict[str, _Plan] = {}
        # Every story new to the store is classified in one batch (the learned model scores a
        # batch with one sparse product).
        new_urls: dict[str, Entry] = {}
        for _job, _guid, entry in fresh:
            url_hash = sha1(entry.url)
            if url_hash not in stored and url_hash not in new_urls:
                new_urls[url_hash] = entry
        classified = dict(
            zip(
                new_urls,
                classify_many(self.classifier, [(e.title, e.summary, e.url) for e in new_urls.values()]),
                strict=True,
            )
        )
        for job, guid_hash, entry in fresh:
            url_hash = sha1(entry.url)
            outlet = entry.outlet or job.default_outlet
            if url_hash in stored:
                sightings.append(_Sighting(job, guid_hash, outlet, url_hash))
                touched.add(stored[url_hash][1])
                continue
            if url_hash in planned:
                if planned[url_hash].job is not job:  # same URL in two feeds of this batch
                    sightings.append(_Sighting(job, guid_hash, outlet, url_hash))
                continue
            plan = self._plan(job, guid_hash, entry, url_hash, outlet, classified[url_hash])
            planned[url_hash] = plan
            plans.append(plan)
        # Stored and announced in the order they were placed: a cluster's founder comes before the
        # stories that joined it (routing alerts on the founder, follow-ups on the rest).
        return self._cluster(plans), sightings, touched, planned

    def _cluster(self, plans: list[_Plan]) -> list[_Plan]:
        """Place the batch's stories one at a time in published order, each indexed (under a
        provisional id) before the next is matched: a Google News feed carries several outlets, and
        several feeds run a story at once, so stories of one batch report one event. That is the
        order and the index ``cluster-eval`` measures; the ids become the store's after the commit
        (``ClusterIndex.rename``), or the stories leave the index if the batch is not stored."""
        self._withdraw_provisional()  # none should be left; if one were, no story may join it
        founders: dict[int, _Plan] = {}  # provisional cluster id -> the batch story that founded it
        placed = sorted(plans, key=lambda p: p.indexed.at)  # stable: feed order breaks ties
        for plan in placed:
            indexed = plan.indexed
            self._next_provisional -= 1
            indexed.story_id = self._next_provisional
            match = self.index.find(indexed)
            if match is None:
                indexed.cluster_id = indexed.story_id
                founders[indexed.story_id] = plan
            else:
                indexed.cluster_id = match.cluster_id
                plan.target = founders.get(match.cluster_id, match.cluster_id)
            self._provisional.append(indexed.story_id)
            self.index.add(indexed, provisional=True)
        return placed

    async def _fresh_entries(self, session: AsyncSession, batch: list[_Job]) -> list[tuple[_Job, str, Entry]]:
        """Entries not yet seen in their own source, first occurrence of each guid."""
        wanted: list[tuple[_Job, str, Entry]] = []
        for job in batch:
            seen: set[str] = set()
            for entry in job.entries:
                guid_hash = sha1(entry.guid)
                if guid_hash not in seen:
                    seen.add(guid_hash)
                    wanted.append((job, guid_hash, entry))
        known = await self.store.known_entries(session, [(job.source.id, g) for job, g, _ in wanted])
        return [(job, g, e) for job, g, e in wanted if (job.source.id, g) not in known]

    def _plan(
        self,
        job: _Job,
        guid_hash: str,
        entry: Entry,
        url_hash: str,
        outlet: str,
        classification: Classification,
    ) -> _Plan:
        model = dict(entry.extra).get("model")
        indexed = index_entry(
            story_id=0,  # set when it is placed (_cluster)
            cluster_id=0,
            outlet=outlet,
            title=entry.title,
            summary=entry.summary,
            at=min(entry.published or job.now, job.now),  # a future date is not trusted
            seen=job.now,
            model=str(model) if model else None,
        )
        return _Plan(job, guid_hash, entry, url_hash, outlet, classification, indexed, None)

    async def _insert_stories(self, session: AsyncSession, plans: list[_Plan], now: datetime) -> None:
        position = {id(p): i for i, p in enumerate(plans)}
        rows = [
            NewStoryRow(
                url_hash=p.url_hash,
                url=p.entry.url,
                title=p.entry.title,
                summary=p.entry.summary,
                outlet=p.outlet,
                source_id=p.job.source.id,
                guid_hash=p.guid_hash,
                published_at=p.entry.published or now,
                backlog=not p.job.source.backlog_done,
                routed=not _announce(p, now),
                official=p.job.source.official,
                extra=dict(p.entry.extra) if p.entry.extra else {},
                scores=[
                    TopicScore(
                        topic,
                        score,
                        topic in p.classification.topics,
                        tuple(p.classification.evidence.get(topic, ())),
                    )
                    for topic, score in p.classification.scores.items()
                    if score > 0
                ],
                cluster_id=p.target if isinstance(p.target, int) else None,
                founder=position[id(p.target)] if isinstance(p.target, _Plan) else None,
            )
            for p in plans
        ]
        await write_stories(session, rows, now)
        for plan, row in zip(plans, rows, strict=True):
            plan.story_id = row.story_id


async def _finish_in_thread(work: Callable[[], _R]) -> _R:
    """``work`` run in a thread; if the caller is cancelled meanwhile (once or more), the thread
    (which cannot be stopped) is still waited for before the cancellation goes on, so nothing
    else touches the index while it runs."""
    running = asyncio.ensure_future(asyncio.to_thread(work))
    cancelled = False
    while not running.done():
        try:
            await asyncio.wait({running})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return running.result()


def _cluster_of(plan: _Plan) -> int:
    if plan.target is None:
        return plan.story_id
    if isinstance(plan.target, int):
        return plan.target
    return _cluster_of(plan.target)


def _new_story(plan: _Plan, now: datetime) -> NewStory:
    published = plan.entry.published or now
    return NewStory(
        story_id=plan.story_id,
        cluster_id=_cluster_of(plan),
        title=plan.entry.title,
        url=plan.entry.url,
        summary=plan.entry.summary,
        outlet=plan.outlet,
        published_at=published,
        classification=plan.classification,
        joined_cluster=plan.target is not None,
        announce=_announce(plan, now),
        official=plan.job.source.official,
    )


def _announce(plan: _Plan, now: datetime) -> bool:
    """New to the world, not just to us: not a first-poll backlog, not an old post resurfacing."""
    published = plan.entry.published or now
    return plan.job.source.backlog_done and now - published <= ANNOUNCE_MAX_AGE
