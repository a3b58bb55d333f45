"""The outbox worker: claims destinations with due rows and posts their units in order.

One destination is served by one worker at a time (a lease on the destination row), units go out
in id order, and the first unit that must wait (rate limit, outage) stops that destination's
pass, so digest parts never overtake each other. Different destinations are served in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from bot.delivery.bodies import THREADED, unit_body
from bot.delivery.senders import Gone, Rejected, Retry, Sender, ThreadRef, thread_ref
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store.db import log_failure
from bot.store.outbox import Dest, Outbox, Unit
from bot.store.repo import new_lease_owner, utcnow

log = logging.getLogger(__name__)

# Test hook for the crash-safety test: "before:slack" kills this process with SIGKILL right before
# the platform call of a unit for a Slack destination, "after:discord:2" right after the second
# Discord call returned (before its outcome is recorded). Unset in production.
CRASH_ENV = "FRONTIERWATCH_TEST_CRASH"
CRASH_MARKER_ENV = "FRONTIERWATCH_TEST_CRASH_MARKER"
_crash_counts: dict[str, int] = {}


def _crash_point(point: str, platform: str) -> None:
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    nth = wanted.split(":")[2:] or ["1"]
    if wanted.split(":")[:2] != [point, platform]:
        return
    key = f"{point}:{platform}"
    _crash_counts[key] = _crash_counts.get(key, 0) + 1
    if _crash_counts[key] != int(nth[0]):
        return
    marker = os.environ.get(CRASH_MARKER_ENV)
    if marker:
        Path(marker).write_text(wanted)
    os.kill(os.getpid(), signal.SIGKILL)


class DeliveryWorker:
    name = "delivery"

    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        senders: Mapping[str, Sender],
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.senders = dict(senders)
        self.metrics = metrics or Metrics()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()
        self.sent = 0
        # Names this worker in the channel leases it takes (unique even for two workers of one process).
        self.owner = new_lease_owner()

    # ------------------------------------------------------------------ service
    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="delivery-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sender in {id(s): s for s in self.senders.values()}.values():
            try:
                await sender.close()
            except Exception:
                log.exception("closing a sender failed")

    def wake(self) -> None:
        """New rows were queued: sweep now instead of at the next tick."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not kill the worker; the next sweep retries
                log_failure(log, "outbox sweep failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.delivery_tick_seconds)

    # ------------------------------------------------------------------ work
    async def run_once(self, now: datetime | None = None) -> int:
        """One sweep: every destination with due rows, in parallel. Returns units posted."""
        now = now or utcnow()
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        # As many channels as are served at once: each is worked on from the moment it is claimed.
        claimed = await self.outbox.claim_destinations(
            now, lease, limit=self.settings.delivery_concurrency, owner=self.owner
        )
        if not claimed:
            return 0
        counts: list[int] = []

        async def one(destination_id: int) -> None:
            try:
                counts.append(await self._serve(destination_id))
            finally:
                await self.outbox.release(destination_id, self.owner)

        async with asyncio.TaskGroup() as group:
            for destination_id in claimed:
                group.create_task(one(destination_id))
        return sum(counts)

    async def drain(self, within: float = 60.0) -> int:
        """Sweep until nothing is due now (for ``frontierwatch digest`` and tests)."""
        total = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            sent = await self.run_once()
            total += sent
            if sent == 0:
                if await self.outbox.open_count() == 0:
                    break
                await asyncio.sleep(min(1.0, self.settings.delivery_tick_seconds))
        return total

    async def _serve(self, destination_id: int) -> int:
        dest = await self.outbox.destination(destination_id)
        if dest is None or not dest.active or dest.paused:
            return 0
        sender = self.senders.get(dest.platform)
        units = await self.outbox.due_units(destination_id, utcnow())
        if sender is None:
            await self.outbox.postpone_all(
                destination_id,
                self.settings.delivery_max_backoff_seconds,
                f"no {dest.platform} sender: the platform's token is not configured",
            )
            return 0
        posted = 0
        for unit in units:
            until = utcnow() + timedelta(seconds=self.settings.delivery_lease_seconds)
            if not await self.outbox.renew(destination_id, until, self.owner):
                log.warning(
                    "lost the lease on destination %d (another worker took it, or the channel was "
                    "paused); leaving it",
                    destination_id,
                )
                return posted
            outcome = await self._deliver(dest, sender, unit)
            if outcome == "gone":
                return posted
            if outcome == "wait":
                break
            if outcome == "sent":
                posted += 1
        return posted

    async def _deliver(self, dest: Dest, sender: Sender, unit: Unit) -> str:
        """'sent', 'failed', 'wait' (stop this destination for now) or 'gone'."""
        give_up = timedelta(hours=self.settings.delivery_give_up_hours)
        if utcnow() - unit.lead.created_at > give_up:
            await self.outbox.mark_failed(unit, f"gave up after {unit.lead.attempts} attempts")
            log.error("delivery %s to %r: gave up after %s", unit.ids, dest, give_up)
            self.metrics.delivery_done(dest.platform, "failed")
            return "failed"
        thread: ThreadRef | None = None
        if unit.kind == "followup":
            if dest.platform not in THREADED:
                await self.outbox.mark_failed(unit, "this destination cannot reply in threads")
                self.metrics.delivery_done(dest.platform, "failed")
                return "failed"
            alert = await self.outbox.alert_of(dest.id, unit.lead.cluster_id)
            if alert is None or alert.status in ("failed", "dropped", "deferred"):
                await self.outbox.mark_failed(unit, "the alert it follows up was not delivered")
                self.metrics.delivery_done(dest.platform, "failed")
                return "failed"
            thread = thread_ref(alert)
            if thread is None:  # the alert is not posted yet; it goes first
                await self.outbox.mark_retry(unit, 5.0, "waiting for the alert", ambiguous=unit.ambiguous)
                return "wait"
        try:
            if unit.ambiguous:
                found = await sender.reconcile(dest, unit, thread)
                if found is not None:
                    log.info("delivery %s was already posted (%s); recorded", unit.ids, found.message_id)
                    await self.outbox.mark_sent(unit, found.message_id)
                    self.metrics.delivery_done(dest.platform, "sent")
                    return "sent"
            previous_topic = await self.outbox.part_topic_before(unit)
            try:
                # In a thread: a weekly chart is drawn by matplotlib (hundreds of milliseconds),
                # which must not stall the Discord gateway's heartbeat or the other channels' sends.
                body = await asyncio.to_thread(unit_body, dest.platform, unit, previous_topic)
            except Exception as exc:  # a row whose body cannot be built fails alone, once
                log.exception("delivery %s to %r: its message could not be built", unit.ids, dest)
                await self.outbox.mark_failed(
                    unit, f"message could not be built: {type(exc).__name__}: {exc}"[:300]
                )
                self.metrics.delivery_done(dest.platform, "failed")
                return "failed"
            await self.outbox.mark_sending(unit)
            _crash_point("before", dest.platform)
            sent = await sender.send(dest, unit, body, thread)
            _crash_point("after", dest.platform)
        except Retry as exc:
            delay = self._backoff(unit.lead.attempts + 1, exc.retry_after)
            log.warning("delivery %s to %r: %s; retry in %.0fs", unit.ids, dest, exc, delay)
            await self.outbox.mark_retry(unit, delay, str(exc), ambiguous=exc.ambiguous or unit.ambiguous)
            self.metrics.delivery_done(dest.platform, "retry")
            return "wait"
        except Gone as exc:
            log.warning("destination %r is gone: %s; marked inactive", dest, exc)
            await self.outbox.deactivate(dest.id, str(exc))
            self.metrics.delivery_done(dest.platform, "gone")
            return "gone"
        except Rejected as exc:
            log.error("delivery %s to %r rejected: %s", unit.ids, dest, exc)
            await self.outbox.mark_failed(unit, str(exc))
            self.metrics.delivery_done(dest.platform, "failed")
            return "failed"
        if sent.thread_id is not None and thread is not None:
            await self.outbox.set_thread(thread.alert_row_id, sent.thread_id)
        await self.outbox.mark_sent(unit, sent.message_id)
        self.sent += 1
        self.metrics.delivery_done(dest.platform, "sent")
        return "sent"

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        cap = self.settings.delivery_max_backoff_seconds
        base = min(cap, 2.0 * 2 ** min(attempts - 1, 12))
        jittered = base * (0.5 + self._rng.random() / 2)
        return float(min(cap, max(jittered, retry_after or 0.0)))
