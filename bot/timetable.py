"""When a destination's next digest is due, in its own time zone.

APScheduler's ``CronTrigger`` does the calendar arithmetic (it is DST-aware: 08:00 in Berlin is
07:00 UTC in winter and 06:00 UTC in summer; a wall time that does not exist on a spring-forward
day fires at the first valid instant after it). The durable schedule is ``destinations.next_digest_at``,
claimed with a lease — APScheduler only ticks the clock in each process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    pass


def parse_hhmm(text: str) -> tuple[int, int]:
    try:
        hour_text, minute_text = text.strip().split(":")
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        raise ScheduleError(f"{text!r} is not a time; use HH:MM, e.g. 08:00") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ScheduleError(f"{text!r} is not a time of day; use 00:00 to 23:59")
    return hour, minute


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{name!r} is not an IANA time zone such as Europe/Paris") from None


def trigger_for(timezone: str, digest_time: str, frequency: str, weekday: str = "mon") -> CronTrigger | None:
    """None when digests are off."""
    if frequency == "off":
        return None
    hour, minute = parse_hhmm(digest_time)
    tz = zone(timezone)
    if frequency == "weekly":
        if weekday not in WEEKDAYS:
            raise ScheduleError(f"{weekday!r} is not a weekday; use one of {', '.join(WEEKDAYS)}")
        return CronTrigger(day_of_week=weekday, hour=hour, minute=minute, timezone=tz)
    if frequency != "daily":
        raise ScheduleError(f"{frequency!r} is not a digest frequency; use daily, weekly or off")
    return CronTrigger(hour=hour, minute=minute, timezone=tz)


def next_digest_at(
    timezone: str, digest_time: str, frequency: str, weekday: str = "mon", *, after: datetime
) -> datetime | None:
    """The first fire time strictly after ``after``, in UTC (None when digests are off)."""
    trigger = trigger_for(timezone, digest_time, frequency, weekday)
    if trigger is None:
        return None
    # CronTrigger returns times >= now; nudging by a microsecond makes "strictly after" hold, so a
    # digest that fired at 08:00:00 is not scheduled again for 08:00:00.
    start = after.astimezone(UTC) + timedelta(microseconds=1)
    tz = zone(timezone)
    for _ in range(3):
        fire: datetime | None = trigger.get_next_fire_time(None, start)
        if fire is None:  # pragma: no cover - a daily/weekly cron always has a next time
            return None
        # On a fall-back night a wall time such as 01:30 happens twice; CronTrigger would fire at
        # both. Only the first occurrence counts, so nobody gets two digests that night.
        wall = fire.astimezone(tz).replace(tzinfo=None)
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if first == fire.astimezone(UTC):
            return first
        start = fire.astimezone(UTC) + timedelta(microseconds=1)
    raise ScheduleError("no valid digest time found")  # pragma: no cover


def local_date_label(at: datetime, timezone: str) -> str:
    try:
        local = at.astimezone(zone(timezone))
    except ScheduleError:
        local = at.astimezone(UTC)
    return local.strftime("%a %d %b %Y")
