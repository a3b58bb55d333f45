"""How the console writes times, scores and JSON (Jinja filters, shared by every template)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2

from bot.timetable import ScheduleError, zone


def when(at: datetime | None) -> str:
    """``2026-11-28 08:00 UTC``; a dash when there is no time."""
    return "—" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative(at: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``, ``in 2 h``, ``now``: how far ``at`` is from now, roughly."""
    if at is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "now"  # unreachable: seconds >= 60 matched "min"


def local_time(at: datetime | None, timezone: str) -> str:
    """``at`` in a destination's time zone, e.g. ``Mon 30 Nov 08:00 Europe/Paris``."""
    if at is None:
        return "—"
    try:
        return at.astimezone(zone(timezone)).strftime(f"%a %d %b %H:%M {timezone}")
    except ScheduleError:
        return when(at)


def score(value: float) -> str:
    return f"{value:.2f}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def register(env: jinja2.Environment) -> None:
    env.filters.update(
        when=when, relative=relative, local_time=local_time, score=score, pretty_json=pretty_json
    )
