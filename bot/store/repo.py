"""Queries the pipeline and the CLI need, in one place, portable across SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.domain import SourceSpec
from bot.sources.config import source_key
from bot.store import models as m
from bot.store.db import chunks, retry_start_race, session_factory

# What the cluster index needs of a stored story:
# (id, cluster, outlet, title, summary, published, first seen, extra).
IndexRow = tuple[int, int, str, str, str, datetime, datetime, dict[str, Any]]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClaimedSource:
    """A source row claimed for one poll (plain data: it leaves the session)."""

    id: int
    name: str
    kind: str
    url: str | None
    org: str | None
    repo: str | None
    interval_minutes: int
    weight: float
    etag: str | None
    last_modified: str | None
    failure_count: int
    backlog_done: bool
    item_hashes: bytes | None = None  # the last stored poll's item hashes (bot.sources.delta)
    official: bool = False  # its stories are tagged official at ingest

    @property
    def spec(self) -> SourceSpec:
        return SourceSpec(
            name=self.name,
            url=self.url or "",
            kind=self.kind,  # type: ignore[arg-type]
            interval_minutes=self.interval_minutes,
            weight=self.weight,
            official=self.official,
            org=self.org,
            repo=self.repo,
        )


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A stored story with its cluster's outlets and passing topics, for listings and digests."""

    id: int
    cluster_id: int
    title: str
    url: str
    summary: str
    outlet: str
    published_at: datetime
    first_seen_at: datetime
    topics: dict[str, float]
    evidence: dict[str, list[str]]
    outlets: list[str]


class Store:
    """Async data access. One instance per process, shared by all stages."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    # ------------------------------------------------------------------ sources
    async def sync_sources(self, specs: Sequence[SourceSpec], now: datetime | None = None) -> dict[str, int]:
        """Make the config-file sources match ``specs``: add new ones, update changed ones, and
        disable the ones that left the file (their stories stay). Replicas may start together."""
        return await retry_start_race("sources", lambda: self._sync_sources(specs, now))

    async def _sync_sources(self, specs: Sequence[SourceSpec], now: datetime | None) -> dict[str, int]:
        now = now or utcnow()
        wanted = {source_key(s): s for s in specs}
        counts = {"added": 0, "updated": 0, "disabled": 0}
        async with self.sessions.begin() as session:
            rows = (await session.scalars(select(m.Source).where(m.Source.origin == "config"))).all()
            existing = {row.key: row for row in rows}
            # A feed a channel added first and the file lists now (by hand, or by importing an
            # export that carried the channels' feeds) is one row, the key being unique: the file
            # adopts it. Inserting a second row would stop every start with an integrity error.
            missing = [key for key in wanted if key not in existing]
            for keys in chunks(missing, 500):
                query = select(m.Source).where(m.Source.key.in_(keys))
                for adopted in (await session.scalars(query)).all():
                    adopted.origin = "config"
                    existing[adopted.key] = adopted
            flipped: list[m.Source] = []
            for key, spec in wanted.items():
                row = existing.get(key)
                if row is None:
                    session.add(_new_source(key, spec, now, origin="config"))
                    counts["added"] += 1
                    continue
                if row.official != spec.official:
                    flipped.append(row)
                changed = _apply_spec(row, spec)
                if changed:
                    counts["updated"] += 1
            left = [row for key, row in existing.items() if key not in wanted]
            # A feed that left the file but that channels added themselves goes back to them (it
            # may have been adopted from them): it stays polled while they want it.
            linked = (
                set(
                    (
                        await session.scalars(
                            select(m.ChannelSource.source_id).where(
                                m.ChannelSource.source_id.in_([row.id for row in left])
                            )
                        )
                    ).all()
                )
                if left
                else set()
            )
            for row in left:
                if row.id in linked:
                    row.origin = "channel"
                elif row.enabled:
                    row.enabled = False
                    counts["disabled"] += 1
            await session.flush()
            for row in flipped:
                await _retag_stories(session, row.id, official=row.official)
        return counts

    async def add_source(self, spec: SourceSpec, *, origin: str, owner_scope: str | None) -> int:
        async with self.sessions.begin() as session:
            row = _new_source(source_key(spec), spec, utcnow(), origin=origin)
            row.owner_scope = owner_scope
            session.add(row)
            await session.flush()
            return row.id

    async def list_sources(self) -> list[m.Source]:
        async with self.sessions() as session:
            return list((await session.scalars(select(m.Source).order_by(m.Source.id))).all())

    async def channel_feeds(self) -> list[tuple[str, str]]:
        """(name, url) of the enabled feeds at least one channel watches through `/watch sources add`,
        oldest first: what `frontierwatch sources export` adds to the sources file's feeds."""
        linked = select(m.ChannelSource.source_id)
        query = (
            select(m.Source.name, m.Source.url)
            .where(
                m.Source.id.in_(linked),
                m.Source.enabled.is_(True),
                m.Source.kind == "feed",
                m.Source.url.is_not(None),
            )
            .order_by(m.Source.id)
        )
        async with self.sessions() as session:
            return [(name, url) for name, url in (await session.execute(query)).all() if url]

    async def claim_due_sources(
        self,
        owner_lease: timedelta,
        now: datetime | None = None,
        limit: int = 100_000,
        *,
        owner: str | None = None,
    ) -> list[ClaimedSource]:
        """Claim the sources due for a poll, with a lease, so that no two replicas poll the same
        source. ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers anyway.

        ``owner`` names the claiming poller; :meth:`renew_source_leases` and
        :meth:`save_fetch_states` then only touch rows whose lease it still holds."""
        now = now or utcnow()
        due = (
            select(m.Source.id)
            .where(
                m.Source.enabled.is_(True),
                m.Source.paused_at.is_(None),
                ~paused_by_its_channels(),
                m.Source.next_poll_at <= now,
                (m.Source.lease_until.is_(None)) | (m.Source.lease_until < now),
            )
            .order_by(m.Source.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(m.Source)
            .where(m.Source.id.in_(due.scalar_subquery()))
            .values(lease_until=now + owner_lease, lease_owner=owner)
            .returning(
                m.Source.id,
                m.Source.name,
                m.Source.kind,
                m.Source.url,
                m.Source.org,
                m.Source.repo,
                m.Source.interval_minutes,
                m.Source.weight,
                m.Source.etag,
                m.Source.last_modified,
                m.Source.failure_count,
                m.Source.backlog_done,
                m.Source.item_hashes,
                m.Source.official,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            rows = (await session.execute(stmt)).all()
        return sorted((ClaimedSource(**row._mapping) for row in rows), key=lambda s: s.id)

    async def pause_source(self, source_id: int, by: str, now: datetime | None = None) -> SourcePause:
        """The operator's pause (`frontierwatch sources disable`): not polled until resumed, on
        every replica (the claim query reads it). Pausing again keeps the first who and when."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(m.Source, source_id, with_for_update=True)
            if row is None:
                raise LookupError(source_id)
            changed = row.paused_at is None
            if changed:
                row.paused_at, row.paused_by = now, by[:200]
            return await _pause_state(session, row, changed)

    async def resume_source(self, source_id: int, now: datetime | None = None) -> SourcePause:
        """Lift the operator's pause; the source is due at once unless its channels paused it."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(m.Source, source_id, with_for_update=True)
            if row is None:
                raise LookupError(source_id)
            changed = row.paused_at is not None
            if changed:
                row.paused_at, row.paused_by = None, None
                row.next_poll_at = now
            return await _pause_state(session, row, changed)

    async def poll_now(self, source_id: int, now: datetime | None = None) -> PollNow:
        """Make the source due now (the web console's "poll now"): whichever replica's poller ticks
        next claims it, as with any due source. A paused or disabled source stays unpolled, and a
        poll already running keeps its lease (its own save sets the next poll afterwards)."""
        now = now or utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(m.Source, source_id, with_for_update=True)
            if row is None:
                raise LookupError(source_id)
            pause = await _pause_state(session, row, changed=False)
            if not row.enabled:
                return PollNow(row.id, row.name, "disabled")
            if row.paused_at is not None or pause.channels:
                return PollNow(row.id, row.name, "paused")
            if row.lease_until is not None and row.lease_until > now:
                return PollNow(row.id, row.name, "polling")
            row.next_poll_at = min(row.next_poll_at, now)
            return PollNow(row.id, row.name, "due")

    async def channel_pauses(self) -> dict[int, list[ChannelPause]]:
        """Source id -> the channels' pauses of it, for the sources that every channel that
        added them has paused (so they are not polled): what `sources list` shows."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    m.ChannelSource.source_id,
                    m.ChannelSource.paused_at,
                    m.ChannelSource.paused_by,
                    m.Destination.platform,
                    m.Destination.name,
                    m.Destination.channel_id,
                )
                .join(m.Destination, m.Destination.id == m.ChannelSource.destination_id)
                .join(m.Source, m.Source.id == m.ChannelSource.source_id)
                .where(
                    m.Source.origin == "channel", m.ChannelSource.paused_at.is_not(None), ~_unpaused_link()
                )
                .order_by(m.ChannelSource.source_id, m.ChannelSource.paused_at)
            )
            found: dict[int, list[ChannelPause]] = {}
            for source_id, at, by, platform, name, channel_id in rows:
                where = f"{platform} #{name or channel_id}"
                found.setdefault(source_id, []).append(ChannelPause(where, by or "", at or utcnow()))
            return found

    async def renew_source_leases(
        self, ids: Sequence[int], lease: timedelta, owner: str, now: datetime | None = None
    ) -> int:
        """Extend the leases this ``owner`` still holds on ``ids``; returns how many it holds."""
        if not ids:
            return 0
        until = (now or utcnow()) + lease
        renewed = 0
        async with self.sessions.begin() as session:
            await _lock_sources(session, ids)
            for chunk in chunks(sorted(ids), 1000):
                result = await session.execute(
                    update(m.Source)
                    .where(m.Source.id.in_(chunk), m.Source.lease_owner == owner)
                    .values(lease_until=until)
                    .execution_options(synchronize_session=False)
                )
                renewed += rowcount(result)
        return renewed

    async def save_fetch_states(self, states: Iterable[dict[str, Any]], *, owner: str | None = None) -> int:
        """Write many sources' fetch state (and release their lease) in one transaction.

        With ``owner``, a row is written only while that owner still holds its lease: a poller that
        lost a source (it stalled past the lease and another replica took over) must not overwrite
        the newer state. Returns the number of rows written."""
        batch = [dict(s, lease_until=None, lease_owner=None) for s in states]
        if not batch:
            return 0
        if owner is None:
            async with self.sessions.begin() as session:
                await session.execute(update(m.Source), batch)
            return len(batch)
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in batch:
            by_keys.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
        written = 0
        async with self.sessions.begin() as session:
            await _lock_sources(session, [row["id"] for row in batch])
            for keys, rows in by_keys.items():
                # On the table, not the mapped class: with a list of parameters the ORM would turn
                # this into its bulk UPDATE by primary key and drop the owner condition.
                table = cast(Table, m.Source.__table__)
                stmt = (
                    update(table)
                    .where(table.c.id == bindparam("b_id"), table.c.lease_owner == owner)
                    .values({key: bindparam(f"b_{key}") for key in keys})
                )
                params = [{f"b_{k}": v for k, v in row.items()} for row in rows]
                result = await (await session.connection()).execute(stmt, params)
                written += rowcount(result)
        return written

    # ------------------------------------------------------------------ stories
    async def known_entries(
        self, session: AsyncSession, pairs: Sequence[tuple[int, str]]
    ) -> set[tuple[int, str]]:
        """Which (source id, guid hash) pairs are already stored."""
        found: set[tuple[int, str]] = set()
        hashes = sorted({g for _, g in pairs})
        wanted_sources = {s for s, _ in pairs}
        for chunk in chunks(hashes, 500):
            rows = await session.execute(
                select(m.SourceEntry.source_id, m.SourceEntry.guid_hash).where(
                    m.SourceEntry.guid_hash.in_(chunk), m.SourceEntry.source_id.in_(wanted_sources)
                )
            )
            found.update((int(s), str(g)) for s, g in rows)
        return found

    async def stories_by_url(
        self, session: AsyncSession, url_hashes: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """url_hash -> (story id, cluster id) for stories already stored."""
        found: dict[str, tuple[int, int]] = {}
        for chunk in chunks(url_hashes, 500):
            rows = await session.execute(
                select(m.Story.url_hash, m.Story.id, m.Story.cluster_id).where(m.Story.url_hash.in_(chunk))
            )
            for url_hash, story_id, cluster_id in rows:
                found[url_hash] = (story_id, cluster_id)
        return found

    async def recent_stories_for_index(
        self, after_id: int, since: datetime, *, ids: Sequence[int] | None = None, limit: int | None = None
    ) -> list[IndexRow]:
        """Stories with an id above ``after_id`` (or with these ``ids``) first seen since ``since``:
        (id, cluster, outlet, title, summary, published, first seen, extra)."""
        wanted = [m.Story.id > after_id] if ids is None else [m.Story.id.in_(list(ids))]
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    m.Story.id,
                    m.Story.cluster_id,
                    m.Story.outlet,
                    m.Story.title,
                    m.Story.summary,
                    m.Story.published_at,
                    m.Story.first_seen_at,
                    m.Story.extra,
                )
                .where(*wanted, m.Story.first_seen_at >= since)
                .order_by(m.Story.id)
                .limit(limit)
            )
            return [(r[0], r[1], r[2], r[3], r[4] or "", r[5], r[6], r[7]) for r in rows]

    async def story_ids_seen_since(
        self, since: datetime, up_to_id: int, published_after: datetime
    ) -> list[int]:
        """Ids (at most ``up_to_id``) of stories first seen since ``since`` and published after
        ``published_after`` (older ones cannot cluster with anything new): cheap gap detection."""
        async with self.sessions() as session:
            found = await session.scalars(
                select(m.Story.id).where(
                    m.Story.first_seen_at >= since,
                    m.Story.id <= up_to_id,
                    m.Story.published_at >= published_after,
                )
            )
            return list(found)

    async def refresh_cluster_counts(self, session: AsyncSession, cluster_ids: Iterable[int]) -> None:
        ids = sorted(set(cluster_ids))
        for chunk in chunks(ids, 500):
            outlets = (
                select(func.count(func.distinct(m.SourceEntry.outlet)))
                .join(m.Story, m.Story.id == m.SourceEntry.story_id)
                .where(m.Story.cluster_id == m.Cluster.id)
                .scalar_subquery()
            )
            await session.execute(
                update(m.Cluster)
                .where(m.Cluster.id.in_(chunk))
                .values(sources_count=outlets, last_seen_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def list_stories(
        self,
        *,
        topic: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
        relevant_only: bool = False,
    ) -> list[StoryRow]:
        async with self.sessions() as session:
            stmt = select(m.Story).order_by(m.Story.published_at.desc(), m.Story.id.desc()).limit(limit)
            if since is not None:
                stmt = stmt.where(m.Story.first_seen_at >= since)
            if topic is not None:
                stmt = stmt.where(
                    m.Story.id.in_(
                        select(m.Classification.story_id).where(
                            m.Classification.topic == topic, m.Classification.passed.is_(True)
                        )
                    )
                )
            elif relevant_only:
                stmt = stmt.where(
                    m.Story.id.in_(select(m.Classification.story_id).where(m.Classification.passed.is_(True)))
                )
            stories = list((await session.scalars(stmt)).all())
            return await self._decorate(session, stories)

    async def _decorate(self, session: AsyncSession, stories: list[m.Story]) -> list[StoryRow]:
        if not stories:
            return []
        ids = [s.id for s in stories]
        topics: dict[int, dict[str, float]] = {i: {} for i in ids}
        evidence: dict[int, dict[str, list[str]]] = {i: {} for i in ids}
        for chunk in chunks(ids, 500):
            rows = await session.execute(
                select(
                    m.Classification.story_id,
                    m.Classification.topic,
                    m.Classification.score,
                    m.Classification.evidence,
                ).where(m.Classification.story_id.in_(chunk), m.Classification.passed.is_(True))
            )
            for story_id, topic, score, ev in rows:
                topics[story_id][topic] = score
                evidence[story_id][topic] = list((ev or {}).get("terms", []))
        cluster_ids = sorted({s.cluster_id for s in stories})
        outlets = await cluster_outlets(session, cluster_ids)
        return [
            StoryRow(
                id=s.id,
                cluster_id=s.cluster_id,
                title=s.title,
                url=s.url,
                summary=s.summary,
                outlet=s.outlet,
                published_at=s.published_at,
                first_seen_at=s.first_seen_at,
                topics=topics[s.id],
                evidence=evidence[s.id],
                outlets=outlets.get(s.cluster_id, [s.outlet]),
            )
            for s in stories
        ]

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            out = {}
            for name, model in (("sources", m.Source), ("stories", m.Story), ("clusters", m.Cluster)):
                out[name] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
            return out


@dataclass(frozen=True, slots=True)
class ChannelPause:
    """One channel's pause of a source it added: where, who, when."""

    channel: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PollNow:
    """What "poll now" did: ``due`` (it is polled at the next tick), or why not: ``paused``,
    ``disabled`` (by the sources file) or ``polling`` (a poll is running now)."""

    id: int
    name: str
    outcome: Literal["due", "paused", "disabled", "polling"]


@dataclass(frozen=True, slots=True)
class SourcePause:
    """A source's pause state after a pause or resume by the operator."""

    id: int
    name: str
    changed: bool  # False: it was already paused (or not paused) before
    paused_at: datetime | None
    paused_by: str | None
    channels: tuple[ChannelPause, ...]  # every channel that added it paused it too (not polled)
    enabled: bool  # False: the sources file disables it, whatever the pause says


def _link_exists(*, paused: bool) -> Any:
    """A channel that added the source has (or has not) paused it; correlated with ``m.Source``
    only, through an alias, so it also works inside a query over ``channel_sources``."""
    link = aliased(m.ChannelSource)
    state = link.paused_at.is_not(None) if paused else link.paused_at.is_(None)
    return select(link.id).where(link.source_id == m.Source.id, state).correlate(m.Source).exists()


def _unpaused_link() -> Any:
    return _link_exists(paused=False)


def paused_by_its_channels() -> Any:
    """A channel-added source that every channel that added it has paused: nobody wants it polled.

    Built-in sources (origin ``config``) only the operator pauses: a channel can link one by
    adding its URL, and pausing that link must not stop the feed for every other channel."""
    return (m.Source.origin == "channel") & _link_exists(paused=True) & ~_unpaused_link()


async def _pause_state(session: AsyncSession, row: m.Source, changed: bool) -> SourcePause:
    channels: tuple[ChannelPause, ...] = ()
    if row.origin == "channel":
        links = (
            await session.execute(
                select(
                    m.ChannelSource.paused_at,
                    m.ChannelSource.paused_by,
                    m.Destination.platform,
                    m.Destination.name,
                    m.Destination.channel_id,
                )
                .join(m.Destination, m.Destination.id == m.ChannelSource.destination_id)
                .where(m.ChannelSource.source_id == row.id)
            )
        ).all()
        if links and all(at is not None for at, *_ in links):
            channels = tuple(
                ChannelPause(f"{platform} #{name or channel_id}", by or "", at or utcnow())
                for at, by, platform, name, channel_id in links
            )
    return SourcePause(row.id, row.name, changed, row.paused_at, row.paused_by, channels, row.enabled)


async def cluster_outlets(session: AsyncSession, cluster_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each cluster's outlets, in the order they first reported it (ties: stored first): the one query
    behind "also: …" lines, digests and `stories`, so they always agree. Every id is a key."""
    ids = sorted(set(cluster_ids))
    outlets: dict[int, list[str]] = {c: [] for c in ids}
    for chunk in chunks(ids, 500):
        rows = await session.execute(
            select(m.Story.cluster_id, m.SourceEntry.outlet, func.min(m.SourceEntry.seen_at))
            .join(m.SourceEntry, m.SourceEntry.story_id == m.Story.id)
            .where(m.Story.cluster_id.in_(chunk))
            .group_by(m.Story.cluster_id, m.SourceEntry.outlet)
            .order_by(func.min(m.SourceEntry.seen_at), func.min(m.SourceEntry.id))
        )
        for cluster_id, outlet, _first in rows:
            outlets[cluster_id].append(outlet)
    return outlets


async def _lock_sources(session: AsyncSession, ids: Iterable[int]) -> None:
    """Lock these source rows in id order (PostgreSQL; SQLite has one writer and ignores it).

    The lease heartbeat renews while a save of poll results runs; two transactions that lock one
    set of rows in different orders deadlock (seen with 100,000 sources), so both lock here first,
    always in the same order."""
    for chunk in chunks(sorted(set(ids)), 1000):
        await session.execute(
            select(m.Source.id).where(m.Source.id.in_(chunk)).order_by(m.Source.id).with_for_update()
        )


async def _retag_stories(session: AsyncSession, source_id: int, *, official: bool) -> None:
    """An operator marked a source official, or unmarked it: its stored stories follow, so the tag
    means the same for yesterday's stories as for tomorrow's. Unmarking keeps the tag on stories an
    other official source also carried. One statement per flipped source (a rare, deliberate edit)."""
    seen_here = select(m.SourceEntry.story_id).where(m.SourceEntry.source_id == source_id)
    stmt = update(m.Story).where(m.Story.id.in_(seen_here)).values(official=official)
    if not official:
        elsewhere = (
            select(m.SourceEntry.story_id)
            .join(m.Source, m.Source.id == m.SourceEntry.source_id)
            .where(m.Source.official.is_(True), m.Source.id != source_id)
        )
        stmt = stmt.where(m.Story.id.not_in(elsewhere))
    await session.execute(stmt.execution_options(synchronize_session=False))


def new_lease_owner() -> str:
    """A name for one poller's or worker's leases: host, pid and a random part, so it is unique
    even when two of them share a process (as in tests). Fits the 64-character owner columns."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (0 when the driver cannot tell)."""
    count = getattr(result, "rowcount", -1)
    return int(count) if isinstance(count, int) and count >= 0 else 0


def _new_source(key: str, spec: SourceSpec, now: datetime, *, origin: str) -> m.Source:
    return m.Source(
        key=key,
        name=spec.name,
        kind=spec.kind,
        url=spec.url or None,
        org=spec.org,
        repo=spec.repo,
        interval_minutes=spec.interval_minutes,
        weight=spec.weight,
        enabled=spec.enabled,
        # Only the operator's file may vouch for a publisher: a channel's source is never official.
        official=spec.official and origin == "config",
        origin=origin,
        next_poll_at=now,
        failure_count=0,
        backlog_done=False,
        created_at=now,
    )


def _apply_spec(row: m.Source, spec: SourceSpec) -> bool:
    changed = False
    for attr, value in (
        ("name", spec.name),
        ("interval_minutes", spec.interval_minutes),
        ("weight", spec.weight),
        ("enabled", spec.enabled),
        ("official", spec.official),
    ):
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed = True
    return changed
