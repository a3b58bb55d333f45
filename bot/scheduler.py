"""APScheduler wiring: the in-process timers.

APScheduler 3's job stores cannot be shared between processes, so they hold nothing durable
here: the poll tick only asks the store which sources are due (``next_poll_at``, claimed with a
lease), which is what makes several replicas safe. The scheduler is the clock, the database is
the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.pipeline.poller import Poller, PollReport
from bot.store.db import log_failure
from bot.store.retention import Retention

log = logging.getLogger(__name__)


class _ShutdownIsNotAnError(logging.Filter):
    """APScheduler logs "Error running job" with a traceback when a job's task is cancelled because
    the process is stopping (the job may not even have started). That is a normal stop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


logging.getLogger("apscheduler.executors.default").addFilter(_ShutdownIsNotAnError())


RETENTION_EVERY = timedelta(hours=1)
RETENTION_FIRST_AFTER = timedelta(minutes=5)  # not in the start's rush of polls


def build_scheduler(
    poller: Poller, tick_seconds: float, retention: Retention | None = None
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(tick_seconds * 4) + 1},
    )

    async def poll_tick() -> None:
        task = asyncio.current_task()
        if task is not None:
            _running_polls.add(task)
        try:
            report = await poller.poll_due()
        except asyncio.CancelledError:  # shutdown: the leases lapse and another cycle redoes it
            log.info("poll cycle stopped by shutdown")
            return
        except Exception as exc:  # the next tick tries again; a crash here must not kill the timer
            log_failure(log, "poll cycle failed", exc)
            return
        finally:
            if task is not None:
                _running_polls.discard(task)
        _log_report(report)

    scheduler.add_job(
        poll_tick,
        IntervalTrigger(seconds=tick_seconds, timezone=UTC),
        id="poll",
        name="poll due sources",
        next_run_time=datetime.now(UTC),
    )
    if retention is not None and retention.days > 0:

        async def retention_pass() -> None:
            task = asyncio.current_task()
            if task is not None:  # stopped with the polls at shutdown: it deletes in small batches
                _running_polls.add(task)
            try:
                await retention.prune(datetime.now(UTC))
            except asyncio.CancelledError:
                return
            except Exception as exc:  # the next hour tries again; rows only wait longer
                log_failure(log, "retention pass failed", exc)
            finally:
                if task is not None:
                    _running_polls.discard(task)

        scheduler.add_job(
            retention_pass,
            IntervalTrigger(seconds=RETENTION_EVERY.total_seconds(), timezone=UTC),
            id="retention",
            name=f"delete rows older than {retention.days} days",
            next_run_time=datetime.now(UTC) + RETENTION_FIRST_AFTER,
            misfire_grace_time=int(RETENTION_EVERY.total_seconds()),
        )
    return scheduler


_running_polls: set[asyncio.Task[object]] = set()  # poll cycles and retention passes under way


MAX_FAILURE_LINES = 5  # beyond this, failures are summarised by cause (the details: `sources list`)


def _log_report(report: PollReport) -> None:
    if not report.outcomes:
        return
    log.info(
        "poll: %d sources — %d new, %d unchanged, %d failed; %d new stories",
        len(report.outcomes),
        report.count("new"),
        report.count("unchanged"),
        report.count("failed"),
        report.stored,
    )
    failed = [o for o in report.outcomes if o.status == "failed"]
    if len(failed) <= MAX_FAILURE_LINES:
        for outcome in failed:
            log.warning("source %r failed: %s", outcome.name, outcome.error)
        return
    causes = Counter(_cause(o.error or "") for o in failed)
    summary = "; ".join(f"{n} × {cause}" for cause, n in causes.most_common(4))
    offline = causes.get("DNS lookup failed", 0) + causes.get("cannot connect", 0)
    hint = " — no network? Sources are retried with back-off." if offline >= len(failed) / 2 else ""
    log.warning(
        "%d sources failed: %s%s (each source and its reason: `frontierwatch sources list`)",
        len(failed),
        summary,
        hint,
    )
    for outcome in failed:
        log.debug("source %r failed: %s", outcome.name, outcome.error)


def _cause(error: str) -> str:
    """The kind of a failure, without the host or the details ("DNS lookup failed for x.com")."""
    for cause in ("DNS lookup failed", "cannot connect", "timed out", "refused", "HTTP 4", "HTTP 5"):
        if cause.lower() in error.lower():
            return cause + ("xx" if cause.startswith("HTTP") else "")
    return error.split(":", 1)[0][:60] or "unknown"


async def run_forever(
    scheduler: AsyncIOScheduler,
    stop: asyncio.Event,
    start_services: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the timers until ``stop`` is set, then stop a running poll cycle.

    The timers start first: polling never waits for a chat platform. ``start_services`` runs beside
    them; a stop while it is still starting (Slack or Discord unreachable) ends it at once, and a
    service that cannot start at all (``ServiceStartError``) ends the run with its message."""
    scheduler.start()
    try:
        if start_services is not None:
            starting = asyncio.ensure_future(start_services())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not starting.done():
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
            if not starting.cancelled():
                starting.result()  # a service that could not start ends the run with its reason
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        running = list(_running_polls)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=10)
