"""The outbox: ``deliveries`` rows and the state machine every send goes through.

    pending ──claim──► sending ──platform ok──► sent
       ▲                  │
       └── retry (429/5xx, nothing posted) ◄──┤
           sending stays (timeout: maybe posted; reconcile before resending)
                          └── gone / rejected ──► failed

A row is written (``pending``) before anything is posted and set to ``sending`` in its own commit
just before the platform call, so after a crash a ``sending`` row means "maybe posted": Discord
resends with the same nonce (Discord returns the first message), Slack first looks for the
delivery id in the channel's history. The unique key (destination, cluster, kind) makes a second
row for the same thing impossible, whichever replica or retry tries.

Units: an alert, follow-up, notice or quiet-day line is one row; a digest message is all rows of
one ``(batch, part)`` (one row per entry), sent as one platform message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store import models as m
from bot.store.db import chunks
from bot.store.repo import Store, rowcount, utcnow

OPEN_STATES = m.OPEN_DELIVERY_STATES


@dataclass(frozen=True, slots=True)
class Dest:
    """A destination as the sender needs it (plain data, outside any session)."""

    id: int
    platform: str
    workspace_id: str
    channel_id: str
    name: str
    webhook_url: str | None
    timezone: str
    active: bool
    alert_cap_per_hour: int
    paused: bool = False  # `/watch pause`

    @classmethod
    def of(cls, row: m.Destination) -> Dest:
        return cls(
            row.id,
            row.platform,
            row.workspace_id,
            row.channel_id,
            row.name,
            row.webhook_url,
            row.timezone,
            row.active,
            row.alert_cap_per_hour,
            row.paused_at is not None,
        )

    def __repr__(self) -> str:  # never show the webhook URL: it is a credential
        return f"Dest(id={self.id}, platform={self.platform!r}, channel={self.channel_id!r})"


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    destination_id: int
    cluster_id: int
    kind: str
    status: str
    batch: str | None
    attempts: int
    payload: dict[str, Any]
    platform_message_id: str | None
    thread_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, r: m.Delivery) -> Row:
        return cls(
            r.id,
            r.destination_id,
            r.cluster_id,
            r.kind,
            r.status,
            r.batch,
            r.attempts,
            dict(r.payload or {}),
            r.platform_message_id,
            r.thread_id,
            r.created_at,
        )


@dataclass(frozen=True, slots=True)
class Unit:
    """What becomes one platform message."""

    kind: str
    rows: tuple[Row, ...]

    @property
    def lead(self) -> Row:
        return self.rows[0]

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]

    @property
    def ambiguous(self) -> bool:
        """A previous attempt may have reached the platform."""
        return any(r.status == "sending" for r in self.rows)

    @property
    def seq(self) -> int:
        return int(self.lead.payload.get("seq", 0))

    @property
    def nonce(self) -> str:
        """Deterministic and ≤ 25 characters: the same message gets the same nonce on every retry
        (within Discord's window that makes a resend return the first message)."""
        base = f"fw{self.lead.id:x}"
        return f"{base}.{self.seq:x}" if self.seq else base


def group_units(rows: Sequence[Row]) -> list[Unit]:
    """Rows in id order → units in the order they must be posted."""
    units: list[Unit] = []
    parts: dict[tuple[str | None, int], list[Row]] = {}
    order: list[tuple[str, Any]] = []
    for row in rows:
        if row.kind == "digest":
            key = (row.batch, int(row.payload.get("part", 1)))
            if key not in parts:
                parts[key] = []
                order.append(("digest", key))
            parts[key].append(row)
        else:
            order.append(("single", row))
    for what, item in order:
        if what == "digest":
            members = sorted(parts[item], key=lambda r: int(r.payload.get("pos", 0)))
            units.append(Unit("digest", tuple(members)))
        else:
            units.append(Unit(item.kind, (item,)))
    return units


async def alert_rows(
    session: AsyncSession, cluster_ids: Sequence[int]
) -> dict[tuple[int, int, str], m.Delivery]:
    """The alert and follow-up rows of these clusters, by (destination, cluster, kind), locked:
    routing reads a follow-up row, merges into it and writes it back, and the worker rolls the
    same row when it is sent (PostgreSQL row locks; on SQLite the routing lock already holds the
    database's write lock)."""
    rows = (
        await session.scalars(
            select(m.Delivery)
            .where(m.Delivery.cluster_id.in_(cluster_ids), m.Delivery.kind.in_(("alert", "followup")))
            .order_by(m.Delivery.id)
            .with_for_update()
        )
    ).all()
    return {(r.destination_id, r.cluster_id, r.kind): r for r in rows}


Delivered = tuple[int, str, str]  # (cluster_id, kind, status) of a channel's digest or alert row


async def delivered(
    session: AsyncSession, destination_ids: Sequence[int], cluster_ids: Sequence[int]
) -> dict[int, list[Delivered]]:
    """Per channel, its digest and alert rows for these clusters (what a digest must skip)."""
    found: dict[int, list[Delivered]] = {d: [] for d in destination_ids}
    for chunk in chunks(cluster_ids, 500):
        rows = await session.execute(
            select(
                m.Delivery.destination_id, m.Delivery.cluster_id, m.Delivery.kind, m.Delivery.status
            ).where(
                m.Delivery.destination_id.in_(destination_ids),
                m.Delivery.kind.in_(("digest", "alert")),
                m.Delivery.cluster_id.in_(chunk),
            )
        )
        for dest_id, cluster_id, kind, status in rows:
            found[dest_id].append((cluster_id, kind, status))
    return found


async def forget_notice(session: AsyncSession, destination_id: int, cluster_id: int) -> None:
    """Delete a channel's finished notice row, so that a later notice for the same source is new."""
    await session.execute(
        delete(m.Delivery).where(
            m.Delivery.destination_id == destination_id,
            m.Delivery.cluster_id == cluster_id,
            m.Delivery.kind == "notice",
            m.Delivery.status.in_(("sent", "failed")),
        )
    )


async def delivery_row(session: AsyncSession, row_id: int) -> m.Delivery | None:
    """One outbox row, loaded into the session (routing merges follow-up items into it)."""
    return await session.get(m.Delivery, row_id)


async def alerts_since(session: AsyncSession, since: datetime) -> dict[int, int]:
    """Per destination, the alerts queued since ``since`` that count against its hourly cap."""
    rows = await session.execute(
        select(m.Delivery.destination_id, func.count())
        .where(m.Delivery.kind == "alert", m.Delivery.status != "deferred", m.Delivery.created_at > since)
        .group_by(m.Delivery.destination_id)
    )
    return {dest: int(n) for dest, n in rows}


def insert_ignore(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` on either database."""
    dialect = session.get_bind().dialect.name
    ins = pg_insert(m.Delivery) if dialect == "postgresql" else sqlite_insert(m.Delivery)
    return ins.values(rows).on_conflict_do_nothing().returning(m.Delivery.id)


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.sessions = store.sessions

    # ------------------------------------------------------------------ enqueue
    async def enqueue(self, session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows that do not exist yet; returns the ids actually created."""
        if not rows:
            return []
        now = utcnow()
        full = [
            {
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "payload": {},
                "batch": None,
                "story_id": None,
                **row,
            }
            for row in rows
        ]
        created: list[int] = []
        for start in range(0, len(full), 200):
            result = await session.execute(insert_ignore(session, full[start : start + 200]))
            created.extend(r[0] for r in result)
        return created

    # ------------------------------------------------------------------ claiming
    async def claim_destinations(
        self, now: datetime, lease: timedelta, limit: int, owner: str | None = None
    ) -> list[int]:
        """Destinations with due rows, each leased to ``owner``: one sender per channel at a time
        across replicas (rate limits are per channel, digest parts must stay in order). Only as
        many as the caller can serve at once: a claimed channel that waits unserved would lose its
        lease to another replica mid-send."""
        d = m.Destination
        due_rows = exists().where(
            m.Delivery.destination_id == d.id,
            m.Delivery.status.in_(OPEN_STATES),
            m.Delivery.next_attempt_at <= now,
        )
        due = (
            select(d.id)
            .where(
                d.active.is_(True),
                d.paused_at.is_(None),
                or_(d.delivery_lease_until.is_(None), d.delivery_lease_until < now),
                due_rows,
            )
            .order_by(d.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(d)
            .where(d.id.in_(due.scalar_subquery()))
            .values(delivery_lease_until=now + lease, delivery_lease_owner=owner)
            .returning(d.id)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions.begin() as session:
            return sorted(r[0] for r in (await session.execute(stmt)).all())

    def _held(self, destination_id: int, owner: str | None) -> Any:
        d = m.Destination
        return (
            and_(d.id == destination_id, d.delivery_lease_owner == owner) if owner else d.id == destination_id
        )

    async def renew(self, destination_id: int, until: datetime, owner: str | None = None) -> bool:
        """Extend ``owner``'s lease on the channel; False when another worker holds it now (this
        one stalled past its lease) or the channel was paused meanwhile (`/watch pause`), and the
        caller must stop sending there. Checked before each unit, so a pause stops a digest mid-way."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(m.Destination)
                .where(self._held(destination_id, owner), m.Destination.paused_at.is_(None))
                .values(delivery_lease_until=until)
                .execution_options(synchronize_session=False)
            )
        return rowcount(result) > 0

    async def release(self, destination_id: int, owner: str | None = None) -> None:
        """Free the channel, unless another worker holds its lease by now."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Destination)
                .where(self._held(destination_id, owner))
                .values(delivery_lease_until=None, delivery_lease_owner=None)
                .execution_options(synchronize_session=False)
            )

    async def destination(self, destination_id: int) -> Dest | None:
        async with self.sessions() as session:
            row = await session.get(m.Destination, destination_id)
            return Dest.of(row) if row is not None else None

    async def due_units(self, destination_id: int, now: datetime) -> list[Unit]:
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(m.Delivery)
                    .where(
                        m.Delivery.destination_id == destination_id,
                        m.Delivery.status.in_(OPEN_STATES),
                        m.Delivery.next_attempt_at <= now,
                    )
                    .order_by(m.Delivery.id)
                )
            ).all()
            return group_units([Row.of(r) for r in rows])

    async def alert_of(self, destination_id: int, cluster_id: int) -> Row | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(m.Delivery).where(
                    m.Delivery.destination_id == destination_id,
                    m.Delivery.cluster_id == cluster_id,
                    m.Delivery.kind == "alert",
                )
            )
            return Row.of(row) if row is not None else None

    async def part_topic_before(self, unit: Unit) -> str | None:
        """The topic the previous part of this digest ended with (to label a continued group)."""
        part = int(unit.lead.payload.get("part", 1))
        if unit.kind != "digest" or part <= 1:
            return None
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(m.Delivery.payload).where(
                        m.Delivery.destination_id == unit.lead.destination_id,
                        m.Delivery.batch == unit.lead.batch,
                        m.Delivery.kind == "digest",
                    )
                )
            ).all()
        previous = [p for p in rows if int(p.get("part", 1)) == part - 1]
        if not previous:
            return None
        last = max(previous, key=lambda p: int(p.get("pos", 0)))
        return str(last.get("entry", {}).get("topic")) or None

    # ------------------------------------------------------------------ state changes
    async def mark_sending(self, unit: Unit) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id.in_(unit.ids))
                .values(status="sending", attempts=m.Delivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )

    async def mark_sent(self, unit: Unit, message_id: str, thread_id: str | None = None) -> None:
        now = utcnow()
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id.in_(unit.ids))
                .values(
                    status="sent", platform_message_id=message_id, sent_at=now, error=None, lease_until=None
                )
                .execution_options(synchronize_session=False)
            )
            if unit.kind == "followup":
                await self._roll_followup(session, unit.lead.id, now)

    async def _roll_followup(self, session: AsyncSession, row_id: int, now: datetime) -> None:
        """Coverage that arrived while a follow-up was in flight becomes the next round."""
        row = await session.get(m.Delivery, row_id)
        if row is None:
            return
        waiting = list((row.payload or {}).get("next_items", []))
        if not waiting:
            return
        payload = dict(row.payload)
        payload.update(items=waiting, next_items=[], seq=int(payload.get("seq", 1)) + 1)
        row.payload = payload
        row.status, row.attempts, row.platform_message_id = "pending", 0, None
        row.next_attempt_at = now + timedelta(minutes=int(payload.get("interval_minutes", 60)))

    async def set_thread(self, alert_row_id: int, thread_id: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id == alert_row_id)
                .values(thread_id=thread_id)
                .execution_options(synchronize_session=False)
            )

    async def mark_retry(self, unit: Unit, delay: float, error: str, *, ambiguous: bool) -> None:
        """Try again later. ``ambiguous``: the request may have been posted (a timeout), so the
        row stays ``sending`` and is reconciled before the next send."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id.in_(unit.ids))
                .values(
                    status="sending" if ambiguous else "pending",
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    error=error[:500],
                )
                .execution_options(synchronize_session=False)
            )

    async def mark_failed(self, unit: Unit, error: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.id.in_(unit.ids))
                .values(status="failed", error=error[:500])
                .execution_options(synchronize_session=False)
            )

    async def deactivate(self, destination_id: int, reason: str) -> None:
        """The channel is gone (deleted, bot removed, webhook revoked): stop sending there, say why
        (``/watch status`` shows ``inactive_reason``), and close its open rows."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Destination)
                .where(m.Destination.id == destination_id)
                .values(active=False, inactive_reason=reason[:500], delivery_lease_until=None)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(m.Delivery)
                .where(and_(m.Delivery.destination_id == destination_id, m.Delivery.status.in_(OPEN_STATES)))
                .values(status="failed", error=f"destination inactive: {reason}"[:500])
                .execution_options(synchronize_session=False)
            )

    async def postpone_all(self, destination_id: int, delay: float, error: str) -> None:
        """Nothing can send to this platform right now (no token configured, login failing)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(m.Delivery)
                .where(m.Delivery.destination_id == destination_id, m.Delivery.status.in_(OPEN_STATES))
                .values(next_attempt_at=utcnow() + timedelta(seconds=delay), error=error[:500])
                .execution_options(synchronize_session=False)
            )

    async def open_count(self) -> int:
        """Rows not yet delivered (any destination), for ``digest`` and tests."""
        from sqlalchemy import func

        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(m.Delivery)
                    .join(m.Destination, m.Destination.id == m.Delivery.destination_id)
                    .where(m.Delivery.status.in_(OPEN_STATES), m.Destination.active.is_(True))
                )
                or 0
            )
