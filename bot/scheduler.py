"""APScheduler wiring: the in-process timers.

APScheduler 3's job stores cannot be shared between processes, so they hold nothing durable
here: the poll tick only asks the store which sources are due (``next_poll_at``, claimed with a
lease), which is what makes several replicas safe. The scheduler is the clock, the database is
the schedule.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.pipeline.poller import Poller, PollReport

log = logging.getLogger(__name__)


def build_scheduler(poller: Poller, tick_seconds: float) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(tick_seconds * 4) + 1},
    )

    async def poll_tick() -> None:
        try:
            report = await poller.poll_due()
        except Exception:  # the next tick tries again; a crash here must not kill the timer
            log.exception("poll cycle failed")
            return
        _log_report(report)

    scheduler.add_job(
        poll_tick,
        IntervalTrigger(seconds=tick_seconds, timezone=UTC),
        id="poll",
        name="poll due sources",
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def _log_report(report: PollReport) -> None:
    if not report.outcomes:
        return
    log.info(
        "poll: %d sources — %d new, %d unchanged, %d failed; %d new stories",
        len(report.outcomes),
        report.count("new"),
        report.count("unchanged"),
        report.count("failed"),
        len(report.new_stories),
    )
    for outcome in report.outcomes:
        if outcome.status == "failed":
            log.warning("source %r failed: %s", outcome.name, outcome.error)


async def run_forever(scheduler: AsyncIOScheduler, stop: asyncio.Event) -> None:
    """Run the timers until ``stop`` is set, then wait for the running job to finish."""
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
